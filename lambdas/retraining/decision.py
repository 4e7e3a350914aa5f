"""Promote or not: the candidate's held-out test figures against the model in production's,
on the configured figure and margin.

The training job scores the production model on its own test photos (train.py's
``--against``, the job's ``production`` channel): ``paired`` holds those figures and the
differences with paired 95% bootstrap intervals. Then the candidate is promoted only when
it is better by the margin *and* by more than the photos' noise (the interval excludes no
gain): on a few hundred test photos a 0.01 gain is a coin toss. Without paired figures (a
job that did not score production, or production changed since) the candidate's figures
are compared with the record's, which may come from other photos; the summary says so.

Pure. A record is what the pipeline keeps about the production model (an SSM parameter):
``{"version", "job", "model_data", "test_data", "figures": {...}, "execution"}``.
"""

from __future__ import annotations

import json
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
    paired: Mapping[str, Any] | None = None,
) -> Decision:
    """Promote when the candidate beats production on ``metric`` by at least ``margin``
    (and by something: a zero margin still needs a strict gain); with ``paired`` figures
    of this production model, on the same photos and beyond their noise."""
    higher_is_better = metric not in LOWER_IS_BETTER
    sign = 1.0 if higher_is_better else -1.0
    new = _figure(candidate, metric, "the candidate")
    same_photos = paired is not None and paired.get("model_version") == production.get("version")
    if paired is not None and same_photos:
        old, difference, interval, photos = _paired(paired, metric)
        gain = sign * difference
        low, high = sorted(sign * bound for bound in interval)
        where = f" on the same {photos} photos"
        noise = f" (95% interval of the gain {low:+.4f} to {high:+.4f})"
    else:
        old = _figure(production, metric, f"the production model {production.get('version')!r}")
        gain, low, where, noise = sign * (new - old), math.inf, "", ""
    enough = gain > 0 and gain >= margin - TOLERANCE
    promote = enough and low > 0
    verdict = "better" if gain > 0 else "not better"
    reason = "promote" if promote else "keep the production model"
    if enough and not promote:
        reason += ": the gain is within the photos' noise"
    summary = (
        f"test {metric} ({'higher' if higher_is_better else 'lower'} is better){where}: "
        f"candidate {new:.4f}, production {old:.4f}; {verdict} by {abs(gain):.4f}{noise}, "
        f"margin {margin:.4f}: {reason}"
    )
    if not same_photos and candidate.get("test_data") != production.get("test_data"):
        summary += (
            f". Measured on different test data: {candidate.get('test_data')} "
            f"and {production.get('test_data')}"
        )
    if paired is not None and not same_photos:
        summary += (
            f". The job scored {paired.get('model_version')!r}, production is now "
            f"{production.get('version')!r}: not on the same photos"
        )
    return Decision(promote=promote, summary=summary)


def _paired(paired: Mapping[str, Any], metric: str) -> tuple[float, float, list[float], str]:
    """Production's figure on the job's photos, ours minus it, its 95% interval, and how
    many photos."""
    difference = paired.get("difference", {}).get(metric, {})
    value, interval = difference.get("value"), difference.get("interval")
    theirs = paired.get("metrics", {}).get(metric)
    if not (
        _finite(value)
        and _finite(theirs)
        and isinstance(interval, list | tuple)
        and len(interval) == 2
        and all(map(_finite, interval))
    ):
        raise RecordError(f"the job's paired {metric} figures are incomplete: {dict(paired)!r}")
    photos = paired.get("metrics", {}).get("n")
    return theirs, value, list(interval), str(int(photos)) if _finite(photos) else "?"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_record(text: str, *, source: str) -> dict[str, Any]:
    """The production record from its stored JSON text, or a clear error."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"{source} is not JSON: {error}") from error
    return check_record(record, source=source)


def production_model(record: Mapping[str, Any], *, source: str) -> str:
    """Where the production model's ``model.tar.gz`` is: the jobs score it on their test
    photos, so a record without one stops the run before any job starts."""
    uri = record.get("model_data")
    if not isinstance(uri, str) or not uri.startswith("s3://") or uri.endswith("/"):
        raise RecordError(
            f"{source} names no model artifact to compare with (model_data: {uri!r}, "
            "expected the S3 URI of a model.tar.gz)"
        )
    return uri


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
    if not _finite(value):
        raise RecordError(f"{whose} has no test {metric} to compare: {value!r}")
    return float(value)
