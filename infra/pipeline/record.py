"""The first production record: the model the CDK app deploys, with the test figures its
model card carries. The pipeline compares its first candidate with these, and rewrites the
record whenever it promotes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.layout import read_card


def initial_record(artifact: Path, model_data: str) -> dict[str, Any]:
    """From the artifact's card: version, ``metrics.test`` as the figures, the data it was
    tested on. A card without test figures gives an empty ``figures``: the pipeline then
    refuses to compare (and says so) rather than promote blindly."""
    card = read_card(artifact)
    test = card.get("metrics", {}).get("test", {})
    return {
        "version": card.get("version", artifact.name),
        "job": None,
        "model_data": model_data,
        "test_data": card.get("training", {}).get("data"),
        "figures": {k: v for k, v in test.items() if isinstance(v, int | float)},
        "execution": None,
    }
