"""The model card: what a model is, how it was made and how good it is."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class ModelCard:
    version: str
    backbone: str
    max_count: int
    input_size: tuple[int, int]  # (height, width) the photos are resized to
    dropout: float = 0.2
    decoding: str = "argmax"  # how a distribution becomes a count (model/counts.py)
    # Served probabilities are softmax(logits / temperature), fitted on validation photos
    # (training/calibration.py); cards written before it existed read as 1.0, unchanged.
    temperature: float = 1.0
    # How many networks of this backbone the weights hold: more than 1 is an ensemble,
    # served as the mean of their probabilities (model/network.py's EnsembleNet).
    members: int = 1
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    training: dict[str, Any] = field(default_factory=dict)  # data, command, hyperparameters
    metrics: dict[str, Any] = field(default_factory=dict)  # held-out figures

    def __post_init__(self) -> None:
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")
        if self.members < 1:
            raise ValueError(f"members must be at least 1, got {self.members}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        fields = json.loads(text)
        fields["input_size"] = tuple(fields["input_size"])
        return cls(**fields)
