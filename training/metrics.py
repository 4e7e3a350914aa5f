"""Counting metrics: accuracy, off-by-one accuracy, RMSE, MAE, confusion matrix, and how
sure those figures are.

Reported on counts 0-5 (the ABID challenge's "moderate" task) and on all counts. A
prediction of "K or more" counts as K; on all counts, true counts above K count as K too.
A few hundred held-out photos leave an accuracy uncertain by several points, so
``bootstrap_intervals`` gives each counts 0-5 figure an interval, or the interval of the
difference between two models judged on the same photos (paired: it rests on the photos
where they disagree, and can show a gain that two overlapping intervals would hide).
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
        error = (predicted[mask] - true_counts[mask].clamp(max=max_count)).float()
        figures |= {f"{name}{suffix}": value.item() for name, value in error_figures(error).items()}
        figures[f"n{suffix}"] = float(mask.sum().item())
    return figures


def confusion_matrix(
    predicted: torch.Tensor, true_counts: torch.Tensor, max_count: int
) -> torch.Tensor:
    """``[true, predicted]`` counts over classes ``0..K``."""
    truth = true_counts.clamp(max=max_count)
    size = max_count + 1
    return torch.bincount(truth * size + predicted, minlength=size * size).view(size, size)


def bootstrap_intervals(
    predicted: torch.Tensor,
    true_counts: torch.Tensor,
    max_count: int,
    *,
    baseline: torch.Tensor | None = None,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of the counts 0-5 figures, resampling photos.

    With ``baseline`` (another model's counts for the same photos), the intervals are of
    ``figure(predicted) - figure(baseline)``, both models scored on each resample: an
    interval that excludes 0 says the difference is more than the luck of the photos.
    """
    moderate = true_counts <= MODERATE_MAX
    if not moderate.any():
        return {}
    truth = true_counts[moderate].clamp(max=max_count)
    error = (predicted[moderate] - truth).float()
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(error), (resamples, len(error)), generator=generator)
    figures = error_figures(error[rows])
    if baseline is not None:
        reference = error_figures((baseline[moderate] - truth).float()[rows])
        figures = {name: value - reference[name] for name, value in figures.items()}
    tail = (1 - level) / 2
    bounds = torch.tensor([tail, 1 - tail])
    return {
        name: tuple(round(v, 4) for v in torch.quantile(value, bounds).tolist())
        for name, value in figures.items()
    }


def error_figures(error: torch.Tensor) -> dict[str, torch.Tensor]:
    """Figures of each row of errors (resample x photo)."""
    return {
        "accuracy": (error == 0).float().mean(-1),
        "off_by_one": (error.abs() <= 1).float().mean(-1),
        "rmse": error.pow(2).mean(-1).sqrt(),
        "mae": error.abs().mean(-1),
    }
