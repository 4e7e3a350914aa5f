"""A teacher's probabilities for the training photos (``--teacher``): what distillation
(``losses.DistillationLoss``) teaches the network to say.

The teacher, a model artifact (an ensemble, typically), scores each training photo once,
as decoded for training and not augmented (augmentation keeps the count), with its own
card's temperature: the probabilities it serves.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from model.artifact import read_artifact
from model.card import ModelCard
from model.predictor import Predictor, probabilities_from_logits


def read_teacher(path: Path, card: ModelCard, device: torch.device) -> tuple[Predictor, str]:
    """The teacher's predictor (fast path, on the training device) and version; ValueError
    unless it counts the classes the network trains on, at its input size."""
    model, teacher = read_artifact(path)
    if teacher.max_count != card.max_count or tuple(teacher.input_size) != card.input_size:
        raise ValueError(
            f"the teacher {teacher.version} counts 0..{teacher.max_count} at "
            f"{tuple(teacher.input_size)}; this run trains 0..{card.max_count} at "
            f"{card.input_size}"
        )
    return Predictor(model, teacher, fast=True, device=device), teacher.version


@torch.inference_mode()
def teacher_probabilities(
    predictor: Predictor, dataset: Dataset, *, batch_size: int = 64
) -> tuple[torch.Tensor, float]:
    """``(N, K + 1)`` served probabilities of the dataset's photos, in its order, and the
    seconds it took."""
    started = time.perf_counter()
    rows = []
    for images, _ in DataLoader(dataset, batch_size=batch_size):
        logits = predictor.logits(list(images))
        rows.append(probabilities_from_logits(logits, predictor.card.temperature))
    return torch.cat(rows), time.perf_counter() - started
