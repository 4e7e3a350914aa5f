"""The decision rule: from the model's count distribution to a verdict about a bin."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    MATCH = "MATCH"
    MISMATCH = "MISMATCH"
    UNCERTAIN = "UNCERTAIN"
    STALE = "STALE"
    UNKNOWN_BIN = "UNKNOWN_BIN"
    INVALID_IMAGE = "INVALID_IMAGE"


DEFAULT_ALERT_STATUSES = frozenset({Status.MISMATCH, Status.UNCERTAIN})  # published to the topic


@dataclass(frozen=True)
class Thresholds:
    """``MATCH`` when p >= match, ``MISMATCH`` when p <= mismatch, else ``UNCERTAIN``.

    The defaults are what ``bincheck evaluate --subset val`` recommends for the default
    model (docs/model.md#the-default-thresholds): MATCH lets at most 5% of one-item
    discrepancies through, MISMATCH flags at most 1% of right quantities.
    """

    match: float = 0.449
    mismatch: float = 0.022

    def __post_init__(self) -> None:
        if not 0.0 <= self.mismatch < self.match <= 1.0:
            raise ValueError(
                "thresholds need 0 <= mismatch < match <= 1, "
                f"got mismatch={self.mismatch} match={self.match}"
            )


class InvalidPrediction(ValueError):
    """The endpoint answered with something that is not a count distribution."""


@dataclass(frozen=True)
class CountPrediction:
    """The endpoint's answer; ``probabilities[max_count]`` is the mass of "K or more"."""

    count: int
    probabilities: tuple[float, ...]
    max_count: int
    model_version: str

    @classmethod
    def from_response(cls, payload: Mapping[str, Any]) -> CountPrediction:
        try:
            count = payload["count"]
            probabilities = tuple(float(p) for p in payload["probabilities"])
            max_count = payload["max_count"]
            model_version = str(payload["model_version"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidPrediction(f"malformed endpoint response: {error!r}") from error
        if not _is_int(count) or not _is_int(max_count) or max_count < 1:
            raise InvalidPrediction("count and max_count must be integers, max_count >= 1")
        if len(probabilities) != max_count + 1:
            raise InvalidPrediction(
                f"expected {max_count + 1} probabilities (0..{max_count - 1} and "
                f"'{max_count} or more'), got {len(probabilities)}"
            )
        if any(not 0.0 <= p <= 1.0 for p in probabilities) or not math.isclose(
            sum(probabilities), 1.0, abs_tol=1e-3
        ):
            raise InvalidPrediction("probabilities must lie in [0, 1] and sum to 1")
        if not 0 <= count <= max_count:
            raise InvalidPrediction(f"count {count} outside 0..{max_count}")
        return cls(count, probabilities, max_count, model_version)

    def probability_of(self, quantity: int) -> float:
        """Probability that the photo shows ``quantity`` items (or, past K, K or more)."""
        if quantity < 0:
            raise ValueError(f"quantity must be >= 0, got {quantity}")
        return self.probabilities[min(quantity, self.max_count)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Verdict:
    status: Status
    probability: float


def judge(expected_quantity: int, prediction: CountPrediction, thresholds: Thresholds) -> Verdict:
    p = prediction.probability_of(expected_quantity)
    if p >= thresholds.match:
        return Verdict(Status.MATCH, p)
    if p <= thresholds.mismatch:
        return Verdict(Status.MISMATCH, p)
    return Verdict(Status.UNCERTAIN, p)


def is_stale(captured_at: datetime, bin_updated_at: datetime | None) -> bool:
    """A photo taken before the bin's quantity last changed cannot confirm that quantity."""
    return bin_updated_at is not None and captured_at < bin_updated_at
