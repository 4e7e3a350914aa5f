"""The model artifact's layout, ``model.tar.gz`` as SageMaker's PyTorch container takes it:

    model.pt             the network's state dict
    model_card.json      version, backbone, K, input size, training data, metrics
    code/inference.py    the handler functions (model_fn, input_fn, predict_fn, output_fn)
    code/model/          this package, so it needs nothing from the repository
    code/requirements.txt

The container extracts it into ``/opt/ml/model`` and imports ``code/inference.py``. Needs no
torch: the CDK app rebuilds a model's ``code/`` from this checkout at synthesis.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent
WEIGHTS = "model.pt"
CARD = "model_card.json"
CODE = "code/"
ENTRY_POINT = "from model.inference import input_fn, model_fn, output_fn, predict_fn  # noqa\n"
# What the AWS PyTorch inference container lacks (it has torch, torchvision and pillow).
REQUIREMENTS = "timm>=1.0.9\n"


def container_sources() -> list[Path]:
    """The package's modules: all of them run in the container (the local server, which
    needs aiohttp, is ``bincheck/inference_server.py``)."""
    return sorted(PACKAGE.glob("*.py"))


def code_files() -> dict[str, bytes]:
    """``code/`` by path, from this checkout."""
    files = {
        f"{CODE}inference.py": ENTRY_POINT.encode(),
        f"{CODE}requirements.txt": REQUIREMENTS.encode(),
    }
    for source in container_sources():
        files[f"{CODE}model/{source.name}"] = source.read_bytes()
    return files


def read_card(path: Path, *, source: str | None = None) -> dict[str, Any]:
    """The card of the ``model.tar.gz`` at ``path`` (named ``source`` in errors), without
    loading the network; ValueError if it is not a model artifact."""
    name = source or str(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            missing = sorted({WEIGHTS, CARD} - set(tar.getnames()))
            if missing:
                raise ValueError(f"{name} is not a model artifact: no {', '.join(missing)}")
            card = json.load(tar.extractfile(CARD))  # type: ignore[arg-type]
    except (tarfile.TarError, json.JSONDecodeError) as error:
        raise ValueError(f"{name} is not a model artifact: {error}") from error
    if not isinstance(card, dict):
        raise ValueError(f"{name} is not a model artifact: its {CARD} is not an object")
    return card
