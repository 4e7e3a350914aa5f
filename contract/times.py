"""One timestamp format everywhere: ISO 8601, UTC, milliseconds, ``Z`` (sorts as text)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp(text: str) -> datetime:
    """Parse ISO 8601; a timestamp without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError) as error:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """A naive ``moment`` is taken as UTC, as in :func:`parse_timestamp`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utc_now() -> datetime:
    return datetime.now(UTC)
