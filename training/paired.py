"""Two models on the same photos: the other's figures, and ours minus its with paired 95%
bootstrap intervals (every resample draws the same photos for both, so a gain shows even
where the two models' own intervals overlap).

Used by ``bincheck evaluate --against`` and by train.py's ``--against``, whose figures the
pipeline's promotion reads. Needs only torch and ``model``: it runs in the training job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from model.card import ModelCard
from model.images import BadInput
from model.predictor import Prediction, Predictor

from .data import Example
from .metrics import bootstrap_intervals, count_metrics


def compare(
    predicted: torch.Tensor,
    other: torch.Tensor,
    counts: torch.Tensor,
    card: ModelCard,
    other_card: ModelCard,
) -> dict[str, Any]:
    """The other model's figures, and ours minus its with paired 95% intervals."""
    mine = count_metrics(predicted, counts, card.max_count)
    theirs = count_metrics(other, counts, other_card.max_count)
    intervals = bootstrap_intervals(
        predicted, counts, card.max_count, baseline=other.clamp(max=card.max_count)
    )
    return {
        "model_version": other_card.version,
        "metrics": theirs,
        "difference": {
            name: {"value": round(mine[name] - theirs[name], 4), "interval": interval}
            for name, interval in intervals.items()
        },
    }


LABELS = {"accuracy": "accuracy", "off_by_one": "off-by-one", "rmse": "RMSE", "mae": "MAE"}


def describe_differences(compared: dict[str, Any]) -> str:
    """``accuracy +0.018 (-0.039 to +0.078)  off-by-one ...``: ours minus the other's."""
    return "  ".join(
        f"{LABELS[name]} {d['value']:+.3f} ({d['interval'][0]:+.3f} to {d['interval'][1]:+.3f})"
        for name, d in compared["difference"].items()
    )


class ServedPhotos(Dataset):
    """The photos of ``examples`` decoded by ``decoder`` (a ``Predictor.decoder``), so
    DataLoader workers decode them as the model serves while the network runs."""

    def __init__(
        self, folder: Path, examples: list[Example], decoder: Callable[[bytes], torch.Tensor]
    ) -> None:
        self.folder = folder
        self.examples = examples
        self.decoder = decoder

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.folder / "images" / f"{self.examples[index].image_id}.jpg"
        try:
            return self.decoder(path.read_bytes())
        except BadInput as error:
            raise ValueError(f"{path}: {error.message}") from error


def predict_photos(
    predictor: Predictor,
    folder: Path,
    examples: list[Example],
    batch_size: int = 32,
    *,
    workers: int = 0,
) -> list[Prediction]:
    """The predictions for ``examples``' photos in order; ``workers`` processes decode."""
    photos = ServedPhotos(folder, examples, predictor.decoder)
    predictions: list[Prediction] = []
    for batch in DataLoader(photos, batch_size=batch_size, num_workers=workers):
        predictions += predictor.predict(list(batch))
    return predictions


def score_against(
    other: tuple[nn.Module, ModelCard],
    folder: Path,
    examples: list[Example],
    predicted: torch.Tensor,
    counts: torch.Tensor,
    card: ModelCard,
    *,
    fast: bool = False,
    batch_size: int = 32,
    workers: int = 0,
) -> dict[str, Any]:
    """``other`` scored on the photos of ``examples`` as it serves (decoded at its own
    input size), against our ``predicted`` counts of the same photos in the same order."""
    theirs = predict_photos(
        Predictor(*other, fast=fast), folder, examples, batch_size, workers=workers
    )
    return compare(predicted, torch.tensor([p.count for p in theirs]), counts, card, other[1])
