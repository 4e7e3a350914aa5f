"""Counting metrics: accuracy, off-by-one accuracy, RMSE, MAE, confusion matrix.

Reported on counts 0-5 (the ABID challenge's "moderate" task) and on all counts. A
prediction of "K or more" counts as K; on all counts, true counts above K count as K too.
"""

from __future__ import annotations

import torch

MODERATE_MAX = 5


def count_metrics(
    predicted: torch.Tensor, true_counts: torch.Tensor, max_count: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    moderate = true_counts <= MODERATE_MAX
    for suffix, mask in (("", moderate), ("_all", torch.ones_like(moderate))):
        if not mask.any():
            continue
        truth = true_counts[mask].clamp(max=max_count).float()
        guess = predicted[mask].float()
        error = guess - truth
        figures[f"accuracy{suffix}"] = (error == 0).float().mean().item()
        figures[f"off_by_one{suffix}"] = (error.abs() <= 1).float().mean().item()
        figures[f"rmse{suffix}"] = error.pow(2).mean().sqrt().item()
        figures[f"mae{suffix}"] = error.abs().mean().item()
        figures[f"n{suffix}"] = float(mask.sum().item())
    return figures


def confusion_matrix(
    predicted: torch.Tensor, true_counts: torch.Tensor, max_count: int
) -> torch.Tensor:
    """``[true, predicted]`` counts over classes ``0..K``."""
    truth = true_counts.clamp(max=max_count)
    size = max_count + 1
    return torch.bincount(truth * size + predicted, minlength=size * size).view(size, size)
