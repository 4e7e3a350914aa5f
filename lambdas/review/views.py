"""What the review API answers: a check as JSON, with its API id and the model's
distribution spelled out."""

from __future__ import annotations

from typing import Any

from contract.check import CheckRecord
from contract.review import encode_check_ref


def check_view(record: CheckRecord) -> dict[str, Any]:
    """The record's fields, plus ``id`` (for ``/checks/{id}``) and ``max_count`` (the last
    probability is the mass of "max_count or more")."""
    view: dict[str, Any] = {"id": encode_check_ref(record.bin_id, record.check_id)}
    view |= record.to_dict()
    if record.probabilities is not None:
        view["max_count"] = len(record.probabilities) - 1
    return view
