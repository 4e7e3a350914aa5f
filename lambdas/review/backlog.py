"""Review backlog metrics, on a schedule: how many checks wait for a person, and how long the
oldest has waited since its photo was taken.

Reads the checks table's sparse ``PENDING_REVIEW_INDEX`` (a ``Select=COUNT`` query, page by
page, and the first item, the oldest capture) and writes ``PendingReviews`` and
``OldestPendingReviewAgeSeconds`` as CloudWatch metrics (Powertools' embedded metric format,
in the application's namespace), where the stack's alarms watch them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from contract.names import PENDING_REVIEW_INDEX
from contract.review import PENDING_REVIEW_KEY, ReviewState
from contract.times import parse_timestamp, utc_now

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "bin-checker"))
PENDING_VALUE = {":pending": {"S": str(ReviewState.PENDING)}}


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age_s: float  # 0 when nothing waits


def measure(client: Any, table: str, now: datetime, *, page_limit: int | None = None) -> Backlog:
    """The pending count (every page of the index) and the oldest pending check's age."""
    query: dict[str, Any] = {
        "TableName": table,
        "IndexName": PENDING_REVIEW_INDEX,
        "KeyConditionExpression": "#pending = :pending",
        "ExpressionAttributeNames": {"#pending": PENDING_REVIEW_KEY},
        "ExpressionAttributeValues": PENDING_VALUE,
    }
    pending, start = 0, None
    while True:
        page = client.query(
            **query,
            Select="COUNT",
            **({"Limit": page_limit} if page_limit else {}),
            **({"ExclusiveStartKey": start} if start else {}),
        )
        pending += page["Count"]
        start = page.get("LastEvaluatedKey")
        if start is None:
            break
    first = client.query(
        **query
        | {"ExpressionAttributeNames": {"#pending": PENDING_REVIEW_KEY, "#at": "captured_at"}},
        ScanIndexForward=True,  # check_id starts with the capture time: oldest first
        Limit=1,
        ProjectionExpression="#at",
    )["Items"]
    if not first:
        return Backlog(pending=pending, oldest_age_s=0.0)
    captured_at = parse_timestamp(first[0]["captured_at"]["S"])
    return Backlog(pending=pending, oldest_age_s=max(0.0, (now - captured_at).total_seconds()))


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    table = os.environ.get("CHECKS_TABLE", "").strip()
    if not table:
        raise RuntimeError("review backlog configuration: CHECKS_TABLE is required")
    backlog = measure(boto3.client("dynamodb"), table, utc_now())
    # Read per invocation: the namespace and service dimension the stack's alarms watch.
    metrics = Metrics(
        namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "BinChecker"),
        service=os.getenv("POWERTOOLS_SERVICE_NAME", "bin-checker"),
    )
    metrics.add_metric(name="PendingReviews", unit=MetricUnit.Count, value=backlog.pending)
    metrics.add_metric(
        name="OldestPendingReviewAgeSeconds", unit=MetricUnit.Seconds, value=backlog.oldest_age_s
    )
    metrics.flush_metrics()
    logger.info(
        "review backlog", extra={"pending": backlog.pending, "oldest_age_s": backlog.oldest_age_s}
    )
    return {"pending": backlog.pending, "oldest_age_s": backlog.oldest_age_s}
