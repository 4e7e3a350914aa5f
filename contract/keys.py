"""Where photos live in the bucket: ``bins/<bin_id>/<capture_id>.<jpg|jpeg|png>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

PHOTO_PREFIX = "bins/"
BIN_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"}


class InvalidPhotoKey(ValueError):
    """A key under ``bins/`` that breaks the upload contract.

    ``bin_id`` is set when the bin can still be identified, so the failure can be
    recorded against it; otherwise the object can only be logged and ignored.
    """

    def __init__(self, key: str, reason: str, bin_id: str | None = None) -> None:
        super().__init__(f"{reason}: {key!r}")
        self.key = key
        self.reason = reason
        self.bin_id = bin_id


@dataclass(frozen=True)
class PhotoKey:
    key: str
    bin_id: str
    capture_id: str
    extension: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.extension]


def decode_event_key(raw_key: str) -> str:
    """S3 notifications URL-encode keys (spaces arrive as ``+``)."""
    return unquote_plus(raw_key)


def parse_photo_key(key: str) -> PhotoKey | None:
    """Parse a decoded object key; ``None`` for keys outside ``bins/`` (not ours)."""
    if not key.startswith(PHOTO_PREFIX):
        return None
    parts = key[len(PHOTO_PREFIX) :].split("/")
    bin_id = parts[0]
    if not BIN_ID_PATTERN.fullmatch(bin_id):
        raise InvalidPhotoKey(key, "bin id must be 1-64 characters of [A-Za-z0-9._-]")
    if len(parts) != 2:
        raise InvalidPhotoKey(key, "expected bins/<bin_id>/<capture_id>.<ext>", bin_id)
    capture_id, dot, extension = parts[1].rpartition(".")
    if not dot or not capture_id:
        raise InvalidPhotoKey(key, "photo name needs a capture id and an extension", bin_id)
    extension = extension.lower()
    if extension not in CONTENT_TYPES:
        raise InvalidPhotoKey(key, f"unsupported photo type '.{extension}'", bin_id)
    return PhotoKey(key=key, bin_id=bin_id, capture_id=capture_id, extension=extension)
