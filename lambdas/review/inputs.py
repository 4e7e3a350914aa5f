"""What a caller sends the review API, parsed and validated: the caller's identity (the
authorizer's JWT claims), a listing's query, a check id, a review's body, a page cursor.

Pure: no AWS, no Powertools. Every refusal is a ``ReviewError`` whose message says what is
wrong and what is accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.keys import BIN_ID_PATTERN
from contract.review import (
    MAX_NOTE_CHARS,
    MAX_REVIEWED_COUNT,
    InvalidCheckRef,
    Resolution,
    decode_check_ref,
)

from .errors import BadRequest, Unauthorized

# Cognito id tokens name the user in cognito:username, access tokens in username.
IDENTITY_CLAIMS = ("cognito:username", "username")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
LISTING_PARAMETERS = ("state", "bin", "cursor", "limit")
ANSWER_FIELDS = ("reviewed_count", "resolution", "note")


def reviewer_from_claims(claims: Mapping[str, Any] | None) -> str:
    """The signed-in user's name, from the claims the JWT authorizer verified."""
    for name in IDENTITY_CLAIMS:
        value = (claims or {}).get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise Unauthorized(
        "no signed-in user: the request carries no verified token claims "
        f"({' or '.join(IDENTITY_CLAIMS)})"
    )


@dataclass(frozen=True)
class Position:
    """Where a listing page ended: the last check it read."""

    bin_id: str
    check_id: str


@dataclass(frozen=True)
class Listing:
    bin_id: str | None = None
    after: Position | None = None
    limit: int = DEFAULT_PAGE_SIZE


def parse_listing(parameters: Mapping[str, str] | None) -> Listing:
    """``GET /checks``'s query: ``state=pending`` (the only listing so far), ``bin``,
    ``cursor`` (from the previous page), ``limit`` (1 to 100)."""
    parameters = parameters or {}
    unknown = sorted(set(parameters) - set(LISTING_PARAMETERS))
    if unknown:
        raise BadRequest(
            f"unknown query parameter {unknown[0]!r}; accepted: {', '.join(LISTING_PARAMETERS)}"
        )
    state = parameters.get("state", "pending")
    if state != "pending":
        raise BadRequest(f"state must be 'pending', got {state!r}")
    bin_id = parameters.get("bin")
    if bin_id is not None and not BIN_ID_PATTERN.fullmatch(bin_id):
        raise BadRequest(f"bin must be 1-64 characters of [A-Za-z0-9._-], got {bin_id!r}")
    limit_text = parameters.get("limit", str(DEFAULT_PAGE_SIZE))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    after = decode_cursor(parameters["cursor"]) if "cursor" in parameters else None
    if after is not None and bin_id is not None and after.bin_id != bin_id:
        raise BadRequest(f"this cursor belongs to another listing than bin {bin_id}'s")
    return Listing(bin_id=bin_id, after=after, limit=int(limit_text))


def encode_cursor(position: Position) -> str:
    raw = json.dumps({"bin_id": position.bin_id, "check_id": position.check_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    refused = BadRequest("cursor is not one this API handed out: start again without it")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise refused from error
    if not isinstance(fields, dict) or set(fields) != {"bin_id", "check_id"}:
        raise refused
    bin_id, check_id = fields["bin_id"], fields["check_id"]
    if not isinstance(bin_id, str) or not BIN_ID_PATTERN.fullmatch(bin_id):
        raise refused
    if not isinstance(check_id, str) or "#" not in check_id or len(check_id) > 1024:
        raise refused
    return Position(bin_id, check_id)


def parse_check_ref(ref: str) -> tuple[str, str]:
    """``(bin_id, check_id)`` of the ``{id}`` in a path."""
    try:
        return decode_check_ref(ref)
    except InvalidCheckRef as error:
        raise BadRequest(f"{error}: check ids come from GET /checks") from error


@dataclass(frozen=True)
class Answer:
    """A review's body: what the person counted and concluded."""

    reviewed_count: int
    resolution: Resolution
    note: str | None = None


def parse_answer(body: str | None) -> Answer:
    """``{"reviewed_count": int, "resolution": "CONFIRMED" | "FALSE_ALARM", "note": str}``."""
    try:
        fields = json.loads(body or "")
    except ValueError as error:
        raise BadRequest(f"the body is not JSON: {error}") from error
    if not isinstance(fields, dict):
        raise BadRequest("the body must be a JSON object")
    return answer_from_fields(fields)


def answer_from_fields(fields: Mapping[str, Any]) -> Answer:
    """The same rules for the API's body and the command line's options."""
    if "reviewer" in fields:
        raise BadRequest("the body may not name the reviewer: it is whoever is signed in")
    unknown = sorted(set(fields) - set(ANSWER_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; accepted: {', '.join(ANSWER_FIELDS)}")
    count = fields.get("reviewed_count")
    if isinstance(count, bool) or not isinstance(count, int):
        raise BadRequest(
            f"reviewed_count must be a whole number from 0 to {MAX_REVIEWED_COUNT}, "
            f"got {json.dumps(count)}"
        )
    if not 0 <= count <= MAX_REVIEWED_COUNT:
        raise BadRequest(
            f"reviewed_count must be a whole number from 0 to {MAX_REVIEWED_COUNT}, got {count}"
        )
    resolution = fields.get("resolution")
    if not isinstance(resolution, str) or resolution not in set(Resolution):
        raise BadRequest(
            f"resolution must be one of {', '.join(Resolution)}, got {json.dumps(resolution)}"
        )
    note = fields.get("note")
    if note is not None and not isinstance(note, str):
        raise BadRequest("note must be text")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise BadRequest(f"note is {len(note)} characters, above the limit of {MAX_NOTE_CHARS}")
    return Answer(count, Resolution(resolution), note)
