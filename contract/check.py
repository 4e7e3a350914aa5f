"""The record of one check and the alert it may raise."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from .decision import Status
from .review import REVIEW_FIELDS, REVIEWED, BinUpdate, Resolution, ReviewState


@dataclass(frozen=True)
class CheckRecord:
    bin_id: str
    capture_id: str
    image_uri: str
    etag: str
    captured_at: str
    checked_at: str
    status: Status
    expected_quantity: int | None = None
    predicted_count: int | None = None
    probability: float | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    detail: str | None = None
    # The model's count distribution: probabilities[K] is the mass of "K or more".
    probabilities: tuple[float, ...] | None = None
    # The bin's updated_at when it was checked (absent: the bin had none), so a review can
    # tell whether the bin changed since.
    bin_updated_at: str | None = None
    # Human review (contract/review.py): PENDING when the status needs a person.
    review_state: ReviewState | None = None
    reviewed_count: int | None = None
    reviewer: str | None = None
    reviewed_at: str | None = None
    resolution: Resolution | None = None
    note: str | None = None
    bin_update: BinUpdate | None = None

    @property
    def check_id(self) -> str:
        """Sort key within a bin: checks of a bin list in capture order."""
        return f"{self.captured_at}#{self.capture_id}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: enums as their names, the distribution as a list. The fields
        added with reviews appear only when set, so other records read as they always did."""
        plain = {
            name: str(value) if isinstance(value, StrEnum) else value
            for name, value in asdict(self).items()
            if value is not None or name not in _ADDED_LATER
        }
        if self.probabilities is not None:
            plain["probabilities"] = list(self.probabilities)
        return {"check_id": self.check_id, **plain}

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> CheckRecord:
        """From ``to_dict``'s form or a stored item (numbers may be ``Decimal``); other keys
        (``check_id``, index keys) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in item.items() if name in known}
        for name in ("expected_quantity", "predicted_count", "reviewed_count"):
            if values.get(name) is not None:
                values[name] = int(values[name])
        for name in ("probability", "latency_ms"):
            if values.get(name) is not None:
                values[name] = float(values[name])
        if values.get("probabilities") is not None:
            values["probabilities"] = tuple(float(p) for p in values["probabilities"])
        for name, kind in _ENUMS.items():
            if values.get(name) is not None:
                values[name] = kind(values[name])
        return cls(**values)


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str
    attributes: dict[str, str]


def describe(record: CheckRecord) -> str:
    """One line a person reads first: what was expected, what was seen, how sure."""
    if record.status is Status.UNKNOWN_BIN:
        return f"bin {record.bin_id} is not in the bins table"
    if record.status is Status.INVALID_IMAGE:
        return f"photo of bin {record.bin_id} could not be checked: {record.detail}"
    if record.status is Status.STALE:
        return f"photo of bin {record.bin_id} predates its last quantity update"
    sure = "" if record.probability is None else f" (p={record.probability:.2f})"
    return (
        f"bin {record.bin_id} expected {record.expected_quantity}, "
        f"model counted {record.predicted_count}{sure}"
    )


def build_alert(record: CheckRecord) -> Alert:
    subject = _one_line(f"{record.status}: {describe(record)}")
    message = json.dumps({"subject": subject, **record.to_dict()}, sort_keys=True)
    return Alert(subject, message, {"status": str(record.status), "bin_id": record.bin_id})


def build_review_notice(record: CheckRecord) -> Alert:
    """A settled review, for the warehouse system: the record with the counted quantity
    (``reviewed_count``), attributes ``status=REVIEWED``, ``resolution``, ``bin_id``."""
    if record.review_state is not ReviewState.REVIEWED or record.resolution is None:
        raise ValueError(f"check {record.check_id} of bin {record.bin_id} is not reviewed")
    subject = _one_line(
        f"{REVIEWED} {record.resolution}: bin {record.bin_id} holds {record.reviewed_count} "
        f"(expected {record.expected_quantity}), counted by {record.reviewer}"
    )
    message = json.dumps({"subject": subject, **record.to_dict()}, sort_keys=True)
    attributes = {"status": REVIEWED, "resolution": str(record.resolution), "bin_id": record.bin_id}
    return Alert(subject, message, attributes)


def _one_line(text: str) -> str:
    # SNS refuses subjects with line breaks or control characters, or of 100 characters or
    # more; details can carry a model's multi-line error text.
    text = text.encode("ascii", "replace").decode()
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:99]


_ADDED_LATER = frozenset({"probabilities", "bin_updated_at", *REVIEW_FIELDS})
_ENUMS: dict[str, type[StrEnum]] = {
    "status": Status,
    "review_state": ReviewState,
    "resolution": Resolution,
    "bin_update": BinUpdate,
}
