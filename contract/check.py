"""The record of one check and the alert it may raise."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .decision import Status


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

    @property
    def check_id(self) -> str:
        """Sort key within a bin: checks of a bin list in capture order."""
        return f"{self.captured_at}#{self.capture_id}"

    def to_dict(self) -> dict[str, Any]:
        return {"check_id": self.check_id, **asdict(self), "status": str(self.status)}


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
    # SNS refuses subjects with line breaks or control characters, or of 100 characters or
    # more; details can carry a model's multi-line error text.
    text = f"{record.status}: {describe(record)}".encode("ascii", "replace").decode()
    subject = " ".join("".join(c if c.isprintable() else " " for c in text).split())[:99]
    message = json.dumps({"subject": subject, **record.to_dict()}, sort_keys=True)
    return Alert(subject, message, {"status": str(record.status), "bin_id": record.bin_id})
