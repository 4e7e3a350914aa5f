"""Promote or not: the candidate's held-out test figures against the figures recorded for
the model in production, on the configured figure and margin.

Pure. A record is what the pipeline keeps about the production model (an SSM parameter):
``{"version", "job", "model_data", "test_data", "figures": {...}, "execution"}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .request import FIGURES, LOWER_IS_BETTER

TOLERANCE = 1e-9  # figures are means over photos: a gain equal to the margin counts


class RecordError(ValueError):
    """A record or a job's figures that cannot be compared: nothing is promoted."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    summary: str


def decide(
    candidate: Mapping[str, Any],
    production: Mapping[str, Any],
    *,
    metric: str,
    margin: float,
) -> Decision:
    """Promote when the candidate beats production on ``metric`` by at least ``margin``
    (and by something: a zero margin still needs a strict gain)."""
    new = _figure(candidate, metric, "the candidate")
    old = _figure(production, metric, f"the production model {production.get('version')!r}")
    higher_is_better = metric not in LOWER_IS_BETTER
    gain = (new - old) if higher_is_better else (old - new)
    promote = gain > 0 and gain >= margin - TOLERANCE
    verdict = "better" if gain > 0 else "not better"
    summary = (
        f"test {metric} ({'higher' if higher_is_better else 'lower'} is better): candidate "
        f"{new:.4f}, production {old:.4f}; {verdict} by {abs(gain):.4f}, margin {margin:.4f}: "
        + ("promote" if promote else "keep the production model")
    )
    if candidate.get("test_data") != production.get("test_data"):
        summary += (
            f". Measured on different test data: {candidate.get('test_data')} "
            f"and {production.get('test_data')}"
        )
    return Decision(promote=promote, summary=summary)


def check_record(record: Any, *, source: str) -> dict[str, Any]:
    """The production record as read back, or a clear error naming where it lives."""
    if not isinstance(record, Mapping) or not isinstance(record.get("figures"), Mapping):
        raise RecordError(
            f"{source} is not a production model record (an object with 'version' and "
            f"'figures'): {record!r}"
        )
    return dict(record)


def _figure(record: Mapping[str, Any], metric: str, whose: str) -> float:
    if metric not in FIGURES:
        raise RecordError(f"cannot compare on {metric!r}: figures are {', '.join(FIGURES)}")
    value = record.get("figures", {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"{whose} has no test {metric} to compare: {value!r}")
    return float(value)
