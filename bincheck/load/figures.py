"""One load step's figures, and the capacity figure across steps. Pure: no I/O.

Percentiles are ``statistics.quantiles(latencies, n=100, method="inclusive")``: linear
interpolation between the closest ranks, the same as numpy's default ``percentile``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Auto scaling's target from a measured capacity: SageMaker's load-testing guide gives
# InvocationsPerInstance = MAX_RPS x SAFETY_FACTOR x 60 and recommends starting at 0.5.
SAFETY_FACTOR = 0.5


@dataclass(frozen=True)
class StepFigures:
    """``duration_s`` is the step's measured wall time, from its first call to the end of
    its last one (in-flight calls finish after the step's time is up)."""

    concurrency: int
    duration_s: float
    calls: int
    ok: int
    invocations_per_minute: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "calls": self.calls,
            "ok": self.ok,
            "invocations_per_minute": self.invocations_per_minute,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "errors": dict(self.errors),
        }


def percentiles(latencies_ms: Sequence[float]) -> tuple[float, float, float] | None:
    """p50, p95, p99; ``None`` without a latency, the value itself with only one."""
    if not latencies_ms:
        return None
    if len(latencies_ms) == 1:
        return (latencies_ms[0],) * 3
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def summarize(
    *,
    concurrency: int,
    wall_s: float,
    latencies_ms: Sequence[float],
    errors: Mapping[str, int],
) -> StepFigures:
    """A step's figures from the latencies of its successful calls and its errors by kind."""
    if wall_s < 0.001:
        raise ValueError(f"a step's wall time must be at least 1 ms, got {wall_s}")
    ok = len(latencies_ms)
    wall_s = round(wall_s, 3)  # the rate is then ok * 60 / duration_s of the JSON, exactly
    ranks = percentiles(latencies_ms)
    p50, p95, p99 = (round(v, 3) for v in ranks) if ranks else (None, None, None)
    return StepFigures(
        concurrency=concurrency,
        duration_s=wall_s,
        calls=ok + sum(errors.values()),
        ok=ok,
        invocations_per_minute=round(ok * 60 / wall_s, 1),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        errors=dict(sorted(errors.items())),
    )


def capacity(steps: Sequence[StepFigures], max_p99_ms: float) -> StepFigures | None:
    """The step with the most invocations per minute whose p99 is within ``max_p99_ms``;
    of equal rates, the lower concurrency. ``None`` when no step kept its p99 within it."""
    within = [s for s in steps if s.p99_ms is not None and s.p99_ms <= max_p99_ms]
    if not within:
        return None
    return max(within, key=lambda s: (s.invocations_per_minute, -s.concurrency))
