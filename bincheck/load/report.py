"""What ``bincheck endpoint load`` prints and writes: the table, the JSON, the plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..console import format_table
from .figures import SAFETY_FACTOR, StepFigures

COLUMNS = ("concurrency", "calls", "ok", "invocations/min", "p50 ms", "p95 ms", "p99 ms", "errors")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _errors(step: StepFigures) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in step.errors.items()) or "-"


def step_line(step: StepFigures) -> str:
    return (
        f"concurrency {step.concurrency}: {step.calls} calls, {step.ok} ok in "
        f"{step.duration_s:.1f} s, {step.invocations_per_minute:.1f} invocations/min, "
        f"p50/p95/p99 {_ms(step.p50_ms)}/{_ms(step.p95_ms)}/{_ms(step.p99_ms)} ms, "
        f"errors: {_errors(step)}"
    )


def steps_table(steps: Sequence[StepFigures]) -> str:
    rows = [
        (
            str(s.concurrency),
            str(s.calls),
            str(s.ok),
            f"{s.invocations_per_minute:.1f}",
            _ms(s.p50_ms),
            _ms(s.p95_ms),
            _ms(s.p99_ms),
            _errors(s),
        )
        for s in steps
    ]
    return format_table(COLUMNS, rows)


def capacity_line(capacity: StepFigures | None, max_p99_ms: float) -> str:
    if capacity is None:
        return f"capacity: no step kept its p99 within {max_p99_ms:g} ms"
    return (
        f"capacity: {capacity.invocations_per_minute:.1f} invocations/min "
        f"at concurrency {capacity.concurrency} (p99 {capacity.p99_ms:.1f} ms "
        f"<= {max_p99_ms:g} ms); as the auto scaling target, x{SAFETY_FACTOR:g} "
        f"(AWS's starting safety factor): invocations_per_instance "
        f"{capacity.invocations_per_minute * SAFETY_FACTOR:.0f}"
    )


def run_json(
    *,
    endpoint: str,
    url: str | None,
    input_mode: str,
    photos: int,
    max_p99_ms: float,
    started_at: str,
    steps: Sequence[StepFigures],
    capacity: StepFigures | None,
) -> dict[str, Any]:
    """The run as ``bincheck cost`` reads it: keep these keys."""
    return {
        "endpoint": endpoint,
        "url": url,
        "input": input_mode,
        "photos": photos,
        "max_p99_ms": float(max_p99_ms),
        "started_at": started_at,
        "steps": [step.as_json() for step in steps],
        "capacity": None
        if capacity is None
        else {
            "concurrency": capacity.concurrency,
            "invocations_per_minute": capacity.invocations_per_minute,
            "p99_ms": capacity.p99_ms,
        },
    }


def write_json(path: Path, run: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2) + "\n")


def plot(
    path: Path,
    steps: Sequence[StepFigures],
    *,
    title: str,
    max_p99_ms: float,
    capacity: StepFigures | None,
) -> None:
    """Invocations per minute above, p50 and p99 latency below, against concurrency."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    figure = Figure(figsize=(6.4, 6.0), dpi=100, layout="constrained")
    rate, latency = figure.subplots(2, 1, sharex=True)
    figure.suptitle(title)
    _rate_panel(rate, steps, max_p99_ms, capacity)
    _latency_panel(latency, steps, max_p99_ms)

    levels = sorted({s.concurrency for s in steps})
    if levels[-1] >= 4 * levels[0]:
        latency.set_xscale("log", base=2)
    latency.set_xticks(levels, [str(level) for level in levels])
    latency.xaxis.set_minor_locator(NullLocator())
    latency.set_xlabel("concurrency (calls in flight)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def _rate_panel(
    axes: Any, steps: Sequence[StepFigures], max_p99_ms: float, capacity: StepFigures | None
) -> None:
    points = [(s.concurrency, s.invocations_per_minute) for s in steps]
    axes.plot(*zip(*points, strict=True), "o-", color="tab:blue")
    _label(axes, points, offset=10)
    if capacity is not None:
        axes.plot(
            capacity.concurrency,
            capacity.invocations_per_minute,
            "*",
            color="tab:green",
            markersize=15,
            label=f"capacity: p99 <= {max_p99_ms:g} ms",
        )
        axes.legend(loc="lower right", fontsize=8)
    axes.set_ylabel("successful invocations / min")
    axes.set_ylim(0, max(rate for _, rate in points) * 1.2 or 1)
    axes.grid(alpha=0.3)


def _latency_panel(axes: Any, steps: Sequence[StepFigures], max_p99_ms: float) -> None:
    for name, color in (("p50", "tab:blue"), ("p99", "tab:red")):
        points = [(s.concurrency, getattr(s, f"{name}_ms")) for s in steps]
        points = [(level, ms) for level, ms in points if ms is not None]
        if points:
            axes.plot(*zip(*points, strict=True), "o-", color=color, label=name)
            axes.legend(loc="upper left", fontsize=8)
        if name == "p99":
            _label(axes, points, offset=7)
    axes.axhline(max_p99_ms, color="tab:red", linestyle="--", linewidth=1, alpha=0.6)
    axes.annotate(
        f"max p99 {max_p99_ms:g} ms",
        (0.5, max_p99_ms),  # between the steps' labels
        xycoords=("axes fraction", "data"),
        textcoords="offset points",
        xytext=(0, 4),
        ha="center",
        fontsize=8,
        color="tab:red",
    )
    axes.set_ylabel("latency of successful calls (ms)")
    axes.set_ylim(0, max([max_p99_ms, *(s.p99_ms or 0 for s in steps)]) * 1.15)
    axes.grid(alpha=0.3)


def _label(axes: Any, points: Sequence[tuple[int, float]], *, offset: int) -> None:
    for level, value in points:
        axes.annotate(
            f"{value:,.0f}",
            (level, value),
            textcoords="offset points",
            xytext=(0, offset),
            ha="center",
            fontsize=8,
        )
