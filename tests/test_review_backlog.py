"""The review backlog function (lambdas/review/backlog.py): what it counts and what it
publishes, against the local stack's checks table (moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from bincheck.local.event_source import LocalLambdaContext
from contract.names import ResourceNames
from contract.review import PENDING_REVIEW_KEY
from lambdas.review import backlog

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TABLE = ResourceNames().checks_table


def put_check(bin_id: str, captured_at: str, *, pending: bool) -> None:
    item = {
        "bin_id": {"S": bin_id},
        "check_id": {"S": f"{captured_at}#{bin_id}-photo"},
        "captured_at": {"S": captured_at},
        "status": {"S": "MISMATCH"},
        "review_state": {"S": "PENDING" if pending else "REVIEWED"},
    }
    if pending:
        item[PENDING_REVIEW_KEY] = {"S": "PENDING"}
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)


@pytest.fixture
def checks(resources):
    put_check("A-1", "2026-03-02T09:00:00.000Z", pending=True)
    put_check("B-2", "2026-03-01T12:00:00.000Z", pending=True)  # the oldest: 24 h
    put_check("C-3", "2026-03-02T11:00:00.000Z", pending=True)
    put_check("D-4", "2026-02-01T00:00:00.000Z", pending=False)  # settled: not counted
    return resources


def test_counts_every_page_of_pending_checks_and_ages_the_oldest_capture(checks):
    client = boto3.client("dynamodb")
    for page_limit in (None, 1, 2):  # one page, and several
        measured = backlog.measure(client, TABLE, NOW, page_limit=page_limit)
        assert measured == backlog.Backlog(pending=3, oldest_age_s=24 * 3600.0)


def test_an_empty_queue_is_zero_pending_and_zero_age(resources):
    put_check("D-4", "2026-02-01T00:00:00.000Z", pending=False)
    measured = backlog.measure(boto3.client("dynamodb"), TABLE, NOW)
    assert measured == backlog.Backlog(pending=0, oldest_age_s=0.0)


def test_the_handler_publishes_both_metrics_in_the_embedded_metric_format(
    checks, monkeypatch, capsys
):
    monkeypatch.setenv("CHECKS_TABLE", TABLE)
    result = backlog.lambda_handler({}, LocalLambdaContext())
    assert result["pending"] == 3 and result["oldest_age_s"] > 24 * 3600
    emf = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and '"_aws"' in line
    ]
    [document] = emf
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "BinCheckerTests"
    assert directive["Dimensions"] == [["service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "PendingReviews": "Count",
        "OldestPendingReviewAgeSeconds": "Seconds",
    }
    assert document["PendingReviews"] == [3.0]
    assert document["OldestPendingReviewAgeSeconds"][0] == result["oldest_age_s"]
    assert document["service"] == "bin-checker"


def test_the_handler_refuses_to_run_without_its_table(monkeypatch):
    monkeypatch.delenv("CHECKS_TABLE", raising=False)
    with pytest.raises(RuntimeError, match="CHECKS_TABLE is required"):
        backlog.lambda_handler({}, LocalLambdaContext())
