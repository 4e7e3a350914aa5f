"""Names the deployment, the local stack and the operator commands share."""

from __future__ import annotations

from dataclasses import dataclass

ENDPOINT_NAME = "bincheck-counter"  # the SageMaker endpoint, and bincheck serve's default
BY_STATUS_INDEX = "by-status"  # the checks table's index on status + check_id
# The checks table's sparse index on pending_review + check_id: the review queue, oldest
# capture first (contract/review.py).
PENDING_REVIEW_INDEX = "pending-review"


@dataclass(frozen=True)
class ResourceNames:
    """The local stack's resource names, also the operator commands' defaults."""

    bucket: str = "bincheck-photos"
    queue: str = "bincheck-photo-events"
    dead_letter_queue: str = "bincheck-photo-events-dlq"
    bins_table: str = "bincheck-bins"
    checks_table: str = "bincheck-checks"
    idempotency_table: str = "bincheck-idempotency"
    alerts_topic: str = "bincheck-alerts"
    endpoint: str = ENDPOINT_NAME
