"""Human review of a check: which checks wait for a person, what a person answers, and how a
check is named in the review API.

A check whose status is in ``REVIEW_STATUSES`` is written ``review_state=PENDING`` with the
sparse key ``PENDING_REVIEW_KEY`` (the ``PENDING_REVIEW_INDEX`` lists the queue, oldest
capture first). Settling it sets the ``REVIEW_FIELDS`` once and removes that key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from enum import StrEnum

from .decision import Status
from .keys import BIN_ID_PATTERN


class ReviewState(StrEnum):
    PENDING = "PENDING"
    REVIEWED = "REVIEWED"


class Resolution(StrEnum):
    CONFIRMED = "CONFIRMED"  # the bin does not hold the expected quantity
    FALSE_ALARM = "FALSE_ALARM"  # it does: the model was wrong or unsure


class BinUpdate(StrEnum):
    """What a settled review did to the bins table."""

    APPLIED = "APPLIED"  # expected_quantity set to the counted quantity
    REFUSED = "REFUSED"  # the bin changed since the photo (or is gone): left alone
    DISABLED = "DISABLED"  # updating the bins table is switched off: the warehouse applies it
    NOT_NEEDED = "NOT_NEEDED"  # a false alarm: the bin holds what the table says


# Only judged checks can be reviewed: a person settles a count against an expected quantity.
REVIEWABLE_STATUSES = frozenset({Status.MATCH, Status.MISMATCH, Status.UNCERTAIN})
DEFAULT_REVIEW_STATUSES = frozenset({Status.MISMATCH, Status.UNCERTAIN})

# The sparse index key: present (value PENDING) only while a check waits for review.
PENDING_REVIEW_KEY = "pending_review"
# The attributes a review writes; nothing else of a check changes when it is settled.
REVIEW_FIELDS = (
    "review_state",
    "reviewed_count",
    "reviewer",
    "reviewed_at",
    "resolution",
    "note",
    "bin_update",
)
# The review API's routes (an HTTP API, every route behind the JWT authorizer).
REVIEW_API_ROUTES = ("GET /checks", "GET /checks/{id}", "POST /checks/{id}/review")
MAX_REVIEWED_COUNT = 10_000
MAX_NOTE_CHARS = 500
REVIEWED = "REVIEWED"  # the ``status`` message attribute of a settled review's notice


@dataclass(frozen=True)
class Review:
    """A person's answer about one check."""

    reviewed_count: int
    resolution: Resolution
    reviewer: str
    reviewed_at: str
    note: str | None = None


def resolution_problem(expected_quantity: int, review: Review) -> str | None:
    """Why the resolution contradicts the count, if it does."""
    if review.resolution is Resolution.CONFIRMED and review.reviewed_count == expected_quantity:
        return (
            f"CONFIRMED means the bin does not hold the expected {expected_quantity}, but "
            f"the count is {review.reviewed_count}: that is a FALSE_ALARM"
        )
    if review.resolution is Resolution.FALSE_ALARM and review.reviewed_count != expected_quantity:
        return (
            f"FALSE_ALARM means the bin holds the expected {expected_quantity}, but the "
            f"count is {review.reviewed_count}: that is CONFIRMED"
        )
    return None


class InvalidCheckRef(ValueError):
    pass


def encode_check_ref(bin_id: str, check_id: str) -> str:
    """A check's id in the review API: URL-safe (capture ids may hold any character)."""
    raw = f"{bin_id}/{check_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_check_ref(ref: str) -> tuple[str, str]:
    """``(bin_id, check_id)`` of an API check id; ``InvalidCheckRef`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(ref + "=" * (-len(ref) % 4))
        text = raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCheckRef(f"{ref!r} is not a check id") from error
    bin_id, slash, check_id = text.partition("/")
    valid = slash and BIN_ID_PATTERN.fullmatch(bin_id) and "#" in check_id
    # The decoder skips characters outside the alphabet: only the canonical form is an id.
    if not valid or encode_check_ref(bin_id, check_id) != ref:
        raise InvalidCheckRef(f"{ref!r} is not a check id")
    return bin_id, check_id
