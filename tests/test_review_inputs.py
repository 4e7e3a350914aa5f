"""Every bad input to the review API gets a clear 4xx JSON error and changes nothing: one
pending check on moto, shared by the module (no test here may change it)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from bincheck.local.resources import provision
from contract.check import CheckRecord
from contract.decision import Status
from contract.names import ResourceNames
from contract.review import ReviewState, encode_check_ref
from lambdas.checker.adapters.checks import ChecksTable
from lambdas.review import handler as review_handler

from .test_review_api import ALICE, call

RECORD = CheckRecord(
    bin_id="R-1",
    capture_id="cap-1",
    image_uri="s3://bincheck-photos/bins/R-1/cap-1.jpg",
    etag="e1",
    captured_at="2026-11-21T09:00:00.000Z",
    checked_at="2026-11-21T09:00:02.000Z",
    status=Status.MISMATCH,
    expected_quantity=5,
    predicted_count=3,
    probability=0.02,
    probabilities=(0.02, 0.02, 0.02, 0.9, 0.02, 0.02),
    review_state=ReviewState.PENDING,
)


@pytest.fixture(scope="module")
def pending():
    """The check's API id; its stored item and an inbox on the alerts topic alongside."""
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            env.setenv(name, value)
        resources = provision()
        for name, value in resources.review_environment().items():
            env.setenv(name, value)
        ChecksTable(resources.names.checks_table, boto3.client("dynamodb")).put(RECORD)
        boto3.client("dynamodb").put_item(
            TableName=resources.names.bins_table,
            Item={"bin_id": {"S": "R-1"}, "expected_quantity": {"N": "5"}},
        )
        sqs = boto3.client("sqs")
        inbox = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
        boto3.client("sns").subscribe(
            TopicArn=resources.alerts_topic_arn,
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
        )
        review_handler.get_service.cache_clear()
        yield encode_check_ref(RECORD.bin_id, RECORD.check_id)
        review_handler.get_service.cache_clear()


def assert_refused(ref, body, status, message, claims=ALICE) -> None:
    dynamodb = boto3.client("dynamodb")
    names = ResourceNames()
    tables = {
        table: dynamodb.scan(TableName=table)["Items"]
        for table in (names.checks_table, names.bins_table)
    }
    answer = call("POST", f"/checks/{ref}/review", body=body, claims=claims)
    assert answer[0] == status
    assert message in answer[1]["error"]
    assert {table: dynamodb.scan(TableName=table)["Items"] for table in tables} == tables
    sqs = boto3.client("sqs")
    inbox = sqs.get_queue_url(QueueName="alerts-inbox")["QueueUrl"]
    assert "Messages" not in sqs.receive_message(QueueUrl=inbox)


BAD_ANSWERS = [
    ("3", 'reviewed_count must be a whole number from 0 to 10000, got "3"'),
    (3.5, "reviewed_count must be a whole number from 0 to 10000, got 3.5"),
    (3.0, "reviewed_count must be a whole number from 0 to 10000, got 3.0"),
    (True, "reviewed_count must be a whole number from 0 to 10000, got true"),
    (None, "reviewed_count must be a whole number from 0 to 10000, got null"),
    (-1, "reviewed_count must be a whole number from 0 to 10000, got -1"),
    (10_001, "reviewed_count must be a whole number from 0 to 10000, got 10001"),
]


@pytest.mark.parametrize(("count", "message"), BAD_ANSWERS)
def test_a_count_that_is_not_a_whole_number_in_range_is_refused(pending, count, message):
    assert_refused(pending, {"reviewed_count": count, "resolution": "CONFIRMED"}, 400, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"reviewed_count": 3,', "the body is not JSON: "),
        ("", "the body is not JSON: "),
        ("[3]", "the body must be a JSON object"),
        ({"reviewed_count": 3}, "resolution must be one of CONFIRMED, FALSE_ALARM, got null"),
        (
            {"reviewed_count": 3, "resolution": "WRONG"},
            'resolution must be one of CONFIRMED, FALSE_ALARM, got "WRONG"',
        ),
        (
            {"reviewed_count": 3, "resolution": ["CONFIRMED"]},
            'resolution must be one of CONFIRMED, FALSE_ALARM, got ["CONFIRMED"]',
        ),
        (
            {"reviewed_count": 3, "resolution": "CONFIRMED", "reviewer": "mallory"},
            "the body may not name the reviewer: it is whoever is signed in",
        ),
        (
            {"reviewed_count": 3, "resolution": "CONFIRMED", "colour": "red"},
            "unknown field 'colour'; accepted: reviewed_count, resolution, note",
        ),
        (
            {"reviewed_count": 3, "resolution": "CONFIRMED", "note": "x" * 501},
            "note is 501 characters, above the limit of 500",
        ),
        (
            {"reviewed_count": 3, "resolution": "CONFIRMED", "note": 7},
            "note must be text",
        ),
        (
            {"reviewed_count": 5, "resolution": "CONFIRMED"},
            "CONFIRMED means the bin does not hold the expected 5, but the count is 5",
        ),
        (
            {"reviewed_count": 4, "resolution": "FALSE_ALARM"},
            "FALSE_ALARM means the bin holds the expected 5, but the count is 4",
        ),
    ],
    ids=[
        "truncated-json",
        "empty-body",
        "not-an-object",
        "no-resolution",
        "unknown-resolution",
        "resolution-list",
        "reviewer-in-body",
        "unknown-field",
        "note-too-long",
        "note-not-text",
        "confirmed-but-equal",
        "false-alarm-but-different",
    ],
)
def test_a_bad_review_body_is_refused(pending, body, message):
    assert_refused(pending, body, 400, message)


@pytest.mark.parametrize(
    "claims",
    [None, {}, {"sub": "0f8c", "token_use": "id"}, {"cognito:username": " "}],
    ids=["no-authorizer", "no-claims", "no-username", "blank-username"],
)
def test_a_request_without_a_verified_user_is_401(pending, claims):
    body = {"reviewed_count": 3, "resolution": "CONFIRMED"}
    assert_refused(pending, body, 401, "no signed-in user", claims=claims)
    assert call("GET", "/checks", claims=claims)[0] == 401


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"state": "reviewed"}, "state must be 'pending', got 'reviewed'"),
        ({"limit": "0"}, "limit must be a whole number from 1 to 100"),
        ({"limit": "many"}, "limit must be a whole number from 1 to 100"),
        ({"bin": "no/slash"}, "bin must be 1-64 characters of [A-Za-z0-9._-], got 'no/slash'"),
        ({"cursor": "xyz"}, "cursor is not one this API handed out: start again without it"),
        ({"sort": "newest"}, "unknown query parameter 'sort'; accepted: state, bin, cursor, limit"),
    ],
)
def test_a_bad_listing_query_is_refused(pending, query, message):
    assert call("GET", "/checks", query=query) == (400, {"error": message})
