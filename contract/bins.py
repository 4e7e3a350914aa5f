"""A bin as the warehouse system describes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .keys import BIN_ID_PATTERN
from .times import parse_timestamp


@dataclass(frozen=True)
class Bin:
    bin_id: str
    expected_quantity: int
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not BIN_ID_PATTERN.fullmatch(self.bin_id):
            raise ValueError(f"bin id {self.bin_id!r} is not 1-64 characters of [A-Za-z0-9._-]")
        if self.expected_quantity < 0:
            raise ValueError(f"expected quantity must be >= 0, got {self.expected_quantity}")

    @classmethod
    def parse(cls, bin_id: str, expected_quantity: str, updated_at: str | None = None) -> Bin:
        """Build a bin from text fields (a CSV row), with a message fit for an operator."""
        text = expected_quantity.strip()
        if not text.isdigit():
            raise ValueError(f"expected quantity must be a whole number >= 0, got {text!r}")
        moment = parse_timestamp(updated_at) if updated_at and updated_at.strip() else None
        return cls(bin_id.strip(), int(text), moment)
