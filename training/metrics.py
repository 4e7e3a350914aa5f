"""Counting metrics: accuracy, off-by-one accuracy, RMSE, MAE, confusion matrix, and how
sure those figures are.

Reported on counts 0-5 (the ABID challenge's "moderate" task) and on all counts. A
prediction of "K or more" counts as K; on all counts, true counts above K count as K too.
A few hundred held-out photos leave an accuracy uncertain by several points, so
``bootstrap_intervals`` gives each counts 0-5 figure an interval, or the interval of the
difference between two models judged on the same photos (paired: it rests on the photos
where they disagree, and can show a gain that two overlapping intervals would hide).

The figures an operator sets the checker's thresholds by (``decision_figures``) work on
the probability of the expected quantity: auto-clear (right quantities MATCH while at most
5% of one-item discrepancies pass), catch-at-1% (discrepancies flagged MISMATCH while at
most 1% of right quantities are), and the AUROC of ``1 - p`` between the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

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


# --- the figures an operator decides by ---------------------------------------------------
# Each expected quantity checked against a photo gives one p = P(expected): "right" ones
# (expected = true count) should come out MATCH, one-item discrepancies (expected = true
# count +-1) MISMATCH. A threshold is placed halfway between the evaluated probability
# that limits it and the next one, so its figures hold exactly on the evaluated photos.


def auroc(right: Sequence[float], wrong: Sequence[float]) -> float | None:
    """How well ``1 - p`` ranks discrepancies above right quantities: the chance that a
    random discrepancy has a lower p than a random right quantity, ties counted half.
    Exact, from midranks (the Mann-Whitney U statistic); None without both kinds."""
    if not right or not wrong:
        return None
    pooled = sorted([(p, 0) for p in right] + [(p, 1) for p in wrong])  # ascending p
    rank_sum, start = 0.0, 0
    while start < len(pooled):
        end = start
        while end < len(pooled) and pooled[end][0] == pooled[start][0]:
            end += 1
        midrank = (start + 1 + end) / 2  # ranks start+1 .. end share their mean
        rank_sum += midrank * sum(kind for _, kind in pooled[start:end])
        start = end
    # Rank by p ascending: discrepancies should rank low. U counts (wrong, right) pairs
    # with p_wrong > p_right (ties half); the AUROC of 1 - p is its complement.
    u_wrong_above = rank_sum - len(wrong) * (len(wrong) + 1) / 2
    return 1 - u_wrong_above / (len(wrong) * len(right))


def auto_clear(
    right: Sequence[float], wrong: Sequence[float], max_wrong_matched: float = 0.05
) -> dict[str, Any] | None:
    """The loosest (lowest) match threshold letting at most ``max_wrong_matched`` of the
    discrepancies through as MATCH, and the share of right quantities it clears."""
    if not right or not wrong:
        return None
    allowed = math.floor(max_wrong_matched * len(wrong) + 1e-9)
    limit = sorted(wrong, reverse=True)[allowed]  # the highest discrepancy it must catch
    next_up = min((p for p in (*right, *wrong) if p > limit), default=1.0)
    threshold = _halfway(limit, next_up) if next_up > limit else None  # none above p = 1
    return {
        "value": _share(right, lambda p: p > limit),
        "match_threshold": threshold,
        "discrepancies_matched": _share(wrong, lambda p: p > limit),
        "max_discrepancies_matched": max_wrong_matched,
    }


def catch_at(
    right: Sequence[float], wrong: Sequence[float], max_right_flagged: float = 0.01
) -> dict[str, Any] | None:
    """The loosest (highest) mismatch threshold flagging at most ``max_right_flagged`` of
    the right quantities as MISMATCH, and the share of discrepancies it flags."""
    if not right or not wrong:
        return None
    allowed = math.floor(max_right_flagged * len(right) + 1e-9)
    limit = sorted(right)[allowed]  # the lowest right quantity it must spare
    next_down = max((p for p in (*right, *wrong) if p < limit), default=0.0)
    threshold = _halfway(next_down, limit) if next_down < limit else None  # none below p = 0
    return {
        "value": _share(wrong, lambda p: p < limit),
        "mismatch_threshold": threshold,
        "right_flagged": _share(right, lambda p: p < limit),
        "max_right_flagged": max_right_flagged,
    }


def recommend_thresholds(
    right: Sequence[float],
    wrong: Sequence[float],
    cleared: dict[str, Any] | None,
    caught: dict[str, Any] | None,
) -> dict[str, Any]:
    """The pair (auto-clear's match threshold, catch-at's mismatch threshold), with the
    verdicts it gives on the evaluated quantities. Where the mismatch threshold is not
    below the match threshold, the two targets leave no UNCERTAIN band: one cut at the
    match threshold (MISMATCH for every evaluated p below it) meets both."""
    match = cleared["match_threshold"] if cleared else None
    mismatch = caught["mismatch_threshold"] if caught else None
    note = None
    if match is None or mismatch is None:
        note = "no threshold meets its target on these photos: keep the configured one"
    elif mismatch >= match:
        below = max(p for p in (*right, *wrong) if p < match)
        note = (
            f"the loosest mismatch threshold ({mismatch:.4g}) is not below the match "
            f"threshold ({match:.4g}): the targets leave no UNCERTAIN band, so one cut at the "
            f"match threshold meets both (mismatch = {below:.4g}, the highest evaluated p "
            "below it)"
        )
        mismatch = below
    result: dict[str, Any] = {"match": match, "mismatch": mismatch, "note": note}
    if match is not None and mismatch is not None:
        for name, values in (("right", right), ("discrepancies", wrong)):
            result[name] = {
                "MATCH": _share(values, lambda p: p >= match),
                "MISMATCH": _share(values, lambda p: p <= mismatch),
                "UNCERTAIN": _share(values, lambda p: mismatch < p < match),
            }
    return result


def decision_figures(
    right: Sequence[float],
    wrong: Sequence[float],
    *,
    max_wrong_matched: float = 0.05,
    max_right_flagged: float = 0.01,
) -> dict[str, Any]:
    """Auto-clear, catch-at-1% (``max_right_flagged``), the AUROC and the recommended
    thresholds, from p(expected) of right quantities and of one-item discrepancies."""
    cleared = auto_clear(right, wrong, max_wrong_matched)
    caught = catch_at(right, wrong, max_right_flagged)
    return {
        "right_quantities": len(right),
        "one_item_discrepancies": len(wrong),
        "auroc": None if (area := auroc(right, wrong)) is None else round(area, 4),
        "auto_clear": cleared,
        "catch_at_1pct": caught,
        "recommended_thresholds": recommend_thresholds(right, wrong, cleared, caught),
    }


DECISION_LABELS = {"auroc": "AUROC", "auto_clear": "auto-clear", "catch_at_1pct": "catch-at-1%"}


def _decision_values(right: Sequence[float], wrong: Sequence[float]) -> dict[str, float]:
    cleared, caught = auto_clear(right, wrong), catch_at(right, wrong)
    return {
        "auroc": auroc(right, wrong) or 0.0,
        "auto_clear": cleared["value"] if cleared else 0.0,
        "catch_at_1pct": caught["value"] if caught else 0.0,
    }


def paired_decision_differences(
    mine: Sequence[Sequence[tuple[float, bool]]],
    theirs: Sequence[Sequence[tuple[float, bool]]],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Ours minus theirs for AUROC, auto-clear and catch-at-1%, with percentile bootstrap
    intervals that resample photos: each photo brings its right quantity and its one-item
    discrepancies, ``(p(expected), expectation_right)``, for both models at once."""
    if len(mine) != len(theirs):
        raise ValueError(f"{len(mine)} photos against {len(theirs)}: not the same photos")

    def figures(groups: Sequence[Sequence[tuple[float, bool]]], rows: Sequence[int]):
        pairs = [pair for row in rows for pair in groups[row]]
        return _decision_values([p for p, r in pairs if r], [p for p, r in pairs if not r])

    every = range(len(mine))
    ours, reference = figures(mine, every), figures(theirs, every)
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(len(mine), (resamples, len(mine)), generator=generator).tolist()
    differences: dict[str, list[float]] = {name: [] for name in DECISION_LABELS}
    for rows in draws:
        a, b = figures(mine, rows), figures(theirs, rows)
        for name in differences:
            differences[name].append(a[name] - b[name])
    tail = (1 - level) / 2
    bounds = torch.tensor([tail, 1 - tail], dtype=torch.float64)
    return {
        name: {
            "value": round(ours[name] - reference[name], 4),
            "interval": tuple(
                round(v, 4)
                for v in torch.quantile(torch.tensor(values, dtype=torch.float64), bounds).tolist()
            ),
        }
        for name, values in differences.items()
    }


def _halfway(low: float, high: float) -> float:
    """The midpoint, to 7 decimals where that stays strictly between (served probabilities
    have 6)."""
    middle = (low + high) / 2
    return rounded if low < (rounded := round(middle, 7)) < high else middle


def _share(values: Sequence[float], condition: Callable[[float], bool]) -> float:
    return round(sum(map(condition, values)) / len(values), 4)
