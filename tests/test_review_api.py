"""The review loop against moto: checks the checker writes, the review API's handler (events
as API Gateway's HTTP API sends them), the REVIEWED message through an SQS subscription,
the optional bins update."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import urlencode

import boto3
import pytest
import requests

from bincheck.local.event_source import LocalLambdaContext
from bincheck.local.http_api import gateway_event
from contract.names import PENDING_REVIEW_INDEX
from contract.review import encode_check_ref
from lambdas.checker.adapters.checks import ChecksTable
from lambdas.review import handler as review_handler
from lambdas.review.inputs import parse_check_ref

from .conftest import distribution, sample_photo

ALICE = {"cognito:username": "alice", "sub": "0f8c-alice", "token_use": "id"}
BOB = {"cognito:username": "bob", "sub": "77aa-bob", "token_use": "id"}


@pytest.fixture
def review(resources, monkeypatch):
    for name, value in resources.review_environment().items():
        monkeypatch.setenv(name, value)
    review_handler.get_service.cache_clear()
    yield resources
    review_handler.get_service.cache_clear()


def call(method: str, path: str, *, body=None, claims=ALICE, query=None) -> tuple[int, dict]:
    """One request as the HTTP API hands it to the function, after the authorizer."""
    raw = body if isinstance(body, str | bytes) else b"" if body is None else json.dumps(body)
    event = gateway_event(
        method=method,
        target=path + (f"?{urlencode(query)}" if query else ""),
        headers={"Content-Type": "application/json"},
        body=raw.encode() if isinstance(raw, str) else raw,
        claims=claims,
    )
    result = review_handler.lambda_handler(event, LocalLambdaContext(function_name="review"))
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], json.loads(result["body"])


def photograph(warehouse, endpoint, event_source, bin_id, expected, answer, **upload) -> str:
    """A bin with ``expected`` items, a photo of it the model answers ``answer`` for."""
    bin_updated_at = upload.pop("bin_updated_at", None)
    if expected is not None:
        warehouse.set_bin(bin_id, expected, bin_updated_at)
    if answer is not None:
        endpoint.answer(answer)
    capture = upload.pop("capture", "cap-1")
    warehouse.upload(f"bins/{bin_id}/{capture}.jpg", **upload)
    assert event_source.drain().failed == 0
    [check] = [c for c in warehouse.checks() if (c["bin_id"], c["capture_id"]) == (bin_id, capture)]
    return encode_check_ref(bin_id, check["check_id"])


def stored(resources, ref: str) -> dict:
    bin_id, check_id = parse_check_ref(ref)
    table = boto3.resource("dynamodb").Table(resources.names.checks_table)
    return table.get_item(Key={"bin_id": bin_id, "check_id": check_id})["Item"]


def bin_row(resources, bin_id: str) -> dict | None:
    table = boto3.resource("dynamodb").Table(resources.names.bins_table)
    return table.get_item(Key={"bin_id": bin_id}).get("Item")


@pytest.fixture
def pending(review, warehouse, endpoint, event_source, inbox) -> str:
    """A MISMATCH of bin R-1 (5 expected, the model sees 3), its alert already read."""
    ref = photograph(
        warehouse,
        endpoint,
        event_source,
        "R-1",
        5,
        distribution(3, 0.95),
        captured_at="2026-11-21T09:00:00Z",
        bin_updated_at="2026-11-20T08:00:00Z",
    )
    inbox.alerts()
    return ref


def test_only_checks_of_the_review_statuses_wait_for_review(
    review, warehouse, endpoint, event_source
):
    at = {"captured_at": "2026-11-21T10:00:00Z"}
    photograph(warehouse, endpoint, event_source, "P-MATCH", 3, distribution(3, 0.95), **at)
    late = {"captured_at": "2026-11-21T09:30:00Z"}
    photograph(warehouse, endpoint, event_source, "P-MISMATCH", 5, distribution(3, 0.95), **late)
    early = {"captured_at": "2026-11-21T09:00:00Z"}
    photograph(warehouse, endpoint, event_source, "P-UNSURE", 2, distribution(2, 0.3), **early)
    stale = {"captured_at": "2026-11-21T09:00:00Z", "bin_updated_at": "2026-11-21T12:00:00Z"}
    photograph(warehouse, endpoint, event_source, "P-STALE", 4, None, **stale)
    photograph(warehouse, endpoint, event_source, "P-UNKNOWN", None, None, **at)
    photograph(warehouse, endpoint, event_source, "P-EMPTY", 1, None, body=b"", **at)

    checks = {c["bin_id"]: c for c in warehouse.checks()}
    assert {b: c.get("review_state") for b, c in checks.items()} == {
        "P-MATCH": None,
        "P-MISMATCH": "PENDING",
        "P-UNSURE": "PENDING",
        "P-STALE": None,
        "P-UNKNOWN": None,
        "P-EMPTY": None,
    }
    # The sparse index holds the pending ones only.
    index = boto3.client("dynamodb").scan(
        TableName=review.names.checks_table, IndexName=PENDING_REVIEW_INDEX
    )
    assert sorted(item["bin_id"]["S"] for item in index["Items"]) == ["P-MISMATCH", "P-UNSURE"]
    # The record keeps what a reviewer and the bins update need: the model's distribution
    # and the bin's state at check time.
    assert (
        checks["P-UNSURE"]["probabilities"]
        == [Decimal("0.14")] * 2 + [Decimal("0.3")] + [Decimal("0.14")] * 3
    )
    assert checks["P-STALE"]["bin_updated_at"] == "2026-11-21T12:00:00.000Z"
    assert "bin_updated_at" not in checks["P-MATCH"]

    status, page = call("GET", "/checks", query={"state": "pending"})
    assert status == 200
    # Oldest capture first.
    assert [c["bin_id"] for c in page["checks"]] == ["P-UNSURE", "P-MISMATCH"]
    assert page["cursor"] is None


def test_the_review_statuses_are_configuration(
    resources, monkeypatch, warehouse, endpoint, event_source
):
    from lambdas.checker import handler as checker_handler

    monkeypatch.setenv("REVIEW_STATUSES", "MISMATCH")
    checker_handler.get_app.cache_clear()
    photograph(warehouse, endpoint, event_source, "Q-1", 5, distribution(3, 0.95))
    photograph(warehouse, endpoint, event_source, "Q-2", 2, distribution(2, 0.3))
    states = {c["bin_id"]: (c["status"], c.get("review_state")) for c in warehouse.checks()}
    assert states == {"Q-1": ("MISMATCH", "PENDING"), "Q-2": ("UNCERTAIN", None)}


def test_one_check_comes_with_its_photo_and_the_models_distribution(pending):
    status, check = call("GET", f"/checks/{pending}")

    assert status == 200
    assert check["id"] == pending
    assert (check["bin_id"], check["status"], check["review_state"]) == (
        "R-1",
        "MISMATCH",
        "PENDING",
    )
    assert (check["expected_quantity"], check["predicted_count"]) == (5, 3)
    assert check["max_count"] == 5
    assert check["probabilities"] == pytest.approx([0.01, 0.01, 0.01, 0.95, 0.01, 0.01])
    assert check["photo_url_expires_in_s"] == 300
    assert "X-Amz-Expires=300" in check["photo_url"]
    photo = requests.get(check["photo_url"], timeout=5)
    assert photo.status_code == 200
    assert photo.content == sample_photo()


def test_settling_confirmed_records_the_review_and_tells_the_warehouse(pending, review, inbox):
    status, answer = call(
        "POST",
        f"/checks/{pending}/review",
        body={"reviewed_count": 3, "resolution": "CONFIRMED", "note": " two items hidden "},
    )

    assert status == 200
    check = answer["check"]
    assert (check["review_state"], check["reviewed_count"], check["reviewer"]) == (
        "REVIEWED",
        3,
        "alice",
    )
    assert (check["resolution"], check["note"], check["bin_update"]) == (
        "CONFIRMED",
        "two items hidden",
        "DISABLED",
    )
    assert answer["bin_update"]["result"] == "DISABLED"
    assert "UPDATE_BINS is off" in answer["bin_update"]["detail"]
    item = stored(review, pending)
    assert item["review_state"] == "REVIEWED"
    assert item["reviewed_count"] == 3
    assert item["reviewer"] == "alice"
    assert item["reviewed_at"] == check["reviewed_at"]
    assert item["status"] == "MISMATCH"  # the model's verdict stays
    assert "pending_review" not in item  # out of the queue
    assert call("GET", "/checks")[1]["checks"] == []
    # The bins table is the warehouse system's: left alone by default.
    assert bin_row(review, "R-1")["expected_quantity"] == 5

    [notice] = inbox.alerts()
    assert notice["attributes"] == {
        "status": "REVIEWED",
        "resolution": "CONFIRMED",
        "bin_id": "R-1",
    }
    assert notice["subject"] == (
        "REVIEWED CONFIRMED: bin R-1 holds 3 (expected 5), counted by alice"
    )
    assert notice["body"]["reviewed_count"] == 3
    assert notice["body"]["expected_quantity"] == 5
    assert notice["body"]["check_id"] == "2026-11-21T09:00:00.000Z#cap-1"
    assert notice["body"]["image_uri"] == "s3://bincheck-photos/bins/R-1/cap-1.jpg"


def test_settling_a_false_alarm(pending, review, inbox):
    status, answer = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 5, "resolution": "FALSE_ALARM"}
    )

    assert status == 200
    assert answer["check"]["resolution"] == "FALSE_ALARM"
    assert answer["check"]["bin_update"] == "NOT_NEEDED"
    assert "note" not in answer["check"]
    [notice] = inbox.alerts()
    assert notice["attributes"] == {
        "status": "REVIEWED",
        "resolution": "FALSE_ALARM",
        "bin_id": "R-1",
    }
    assert notice["body"]["reviewed_count"] == 5


def test_a_check_is_settled_once(pending, review, inbox):
    first = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 3, "resolution": "CONFIRMED"}
    )
    second = call(
        "POST",
        f"/checks/{pending}/review",
        body={"reviewed_count": 5, "resolution": "FALSE_ALARM"},
        claims=BOB,
    )

    assert first[0] == 200
    assert second[0] == 409
    assert "is already reviewed: CONFIRMED, 3 counted by alice at" in second[1]["error"]
    item = stored(review, pending)
    assert (item["reviewer"], item["reviewed_count"]) == ("alice", 3)
    assert len(inbox.alerts()) == 1


def test_a_reviewer_who_loses_the_race_gets_a_conflict(pending, review, monkeypatch):
    """Both read the check pending; the other's write lands first: the condition refuses."""
    store = review_handler.get_service().store
    stale = store.get(*parse_check_ref(pending))
    body = {"reviewed_count": 3, "resolution": "CONFIRMED"}
    assert call("POST", f"/checks/{pending}/review", body=body)[0] == 200
    reads, read = iter([stale]), store.get
    monkeypatch.setattr(store, "get", lambda *key: next(reads, None) or read(*key))

    status, error = call(
        "POST",
        f"/checks/{pending}/review",
        body={"reviewed_count": 4, "resolution": "CONFIRMED"},
        claims=BOB,
    )

    assert status == 409
    assert "already reviewed: CONFIRMED, 3 counted by alice" in error["error"]
    assert stored(review, pending)["reviewed_count"] == 3


def test_the_checker_never_overwrites_a_settled_review(pending, review):
    """A photo's retried check (the alert failed after the write) comes back after review."""
    table = ChecksTable(review.names.checks_table, boto3.client("dynamodb"))
    [record] = list(table.query(bin_id="R-1"))
    call("POST", f"/checks/{pending}/review", body={"reviewed_count": 3, "resolution": "CONFIRMED"})

    assert table.put(record) is False  # the pending record as first written
    assert stored(review, pending)["review_state"] == "REVIEWED"


@pytest.fixture
def update_bins(review, monkeypatch):
    monkeypatch.setenv("UPDATE_BINS", "true")
    review_handler.get_service.cache_clear()


def test_with_update_bins_the_count_becomes_the_expected_quantity(pending, update_bins, review):
    status, answer = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 3, "resolution": "CONFIRMED"}
    )

    assert status == 200
    assert answer["bin_update"]["result"] == "APPLIED"
    assert answer["bin_update"]["detail"] == (
        f"bin R-1: expected_quantity set to 3 (was 5), updated_at {answer['check']['reviewed_at']}"
    )
    assert bin_row(review, "R-1") == {
        "bin_id": "R-1",
        "expected_quantity": 3,
        "updated_at": answer["check"]["reviewed_at"],
    }
    assert stored(review, pending)["bin_update"] == "APPLIED"


def test_with_update_bins_the_same_moment_written_another_way_is_no_change(
    pending, update_bins, review, warehouse
):
    warehouse.set_bin("R-1", 5, "2026-11-20T09:00:00+01:00")  # the warehouse rewrote the row
    status, answer = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 3, "resolution": "CONFIRMED"}
    )
    assert (status, answer["bin_update"]["result"]) == (200, "APPLIED")
    assert bin_row(review, "R-1")["expected_quantity"] == 3


def test_with_update_bins_a_false_alarm_leaves_the_bin_alone(pending, update_bins, review):
    before = bin_row(review, "R-1")
    status, answer = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 5, "resolution": "FALSE_ALARM"}
    )
    assert (status, answer["bin_update"]["result"]) == (200, "NOT_NEEDED")
    assert bin_row(review, "R-1") == before


@pytest.mark.parametrize(
    ("change", "now"),
    [
        ({"quantity": 7, "updated_at": "2026-11-21T11:00:00Z"}, "now 7, updated_at 2026-11-21T11"),
        ({"quantity": 5, "updated_at": "2026-11-21T11:00:00Z"}, "now 5, updated_at 2026-11-21T11"),
        ({"quantity": 6, "updated_at": "2026-11-20T08:00:00Z"}, "now 6, updated_at 2026-11-20"),
        ({"quantity": 5, "updated_at": None}, "now 5, updated_at none"),
        (None, "it is no longer in the bins table"),
    ],
    ids=["quantity-and-time", "time-only", "quantity-only", "time-removed", "bin-deleted"],
)
def test_with_update_bins_a_bin_changed_since_the_photo_is_left_alone(
    pending, update_bins, review, warehouse, inbox, change, now
):
    if change is None:
        boto3.client("dynamodb").delete_item(
            TableName=review.names.bins_table, Key={"bin_id": {"S": "R-1"}}
        )
    else:
        warehouse.set_bin("R-1", change["quantity"], change["updated_at"])
    before = bin_row(review, "R-1")

    status, answer = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 3, "resolution": "CONFIRMED"}
    )

    assert status == 200  # the review itself is settled
    assert answer["bin_update"]["result"] == "REFUSED"
    assert answer["bin_update"]["detail"].startswith("bin R-1: not updated, ")
    assert now in answer["bin_update"]["detail"]
    assert bin_row(review, "R-1") == before
    item = stored(review, pending)
    assert (item["review_state"], item["bin_update"]) == ("REVIEWED", "REFUSED")
    [notice] = inbox.alerts()
    assert notice["body"]["bin_update"] == "REFUSED"


def test_with_update_bins_a_bin_changed_between_the_read_and_the_write_is_left_alone(
    pending, update_bins, review, warehouse, monkeypatch
):
    """The warehouse writes the bin just after the review read it: the transaction's
    condition catches it, and the next read tells what changed."""
    store = review_handler.get_service().store
    reads, read = iter([(5, "2026-11-20T08:00:00Z")]), store.current_bin
    warehouse.set_bin("R-1", 7, "2026-11-21T11:00:00Z")
    monkeypatch.setattr(store, "current_bin", lambda bin_id: next(reads, None) or read(bin_id))

    status, answer = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 3, "resolution": "CONFIRMED"}
    )

    assert (status, answer["bin_update"]["result"]) == (200, "REFUSED")
    assert "now 7, updated_at 2026-11-21T11:00:00Z" in answer["bin_update"]["detail"]
    assert bin_row(review, "R-1")["expected_quantity"] == 7


def test_a_bin_that_had_no_updated_at_is_updated_while_it_still_has_none(
    review, update_bins, warehouse, endpoint, event_source
):
    ref = photograph(warehouse, endpoint, event_source, "R-2", 4, distribution(1, 0.95))
    status, answer = call(
        "POST", f"/checks/{ref}/review", body={"reviewed_count": 1, "resolution": "CONFIRMED"}
    )
    assert (status, answer["bin_update"]["result"]) == (200, "APPLIED")
    assert bin_row(review, "R-2")["expected_quantity"] == 1


def test_an_unknown_check_is_404_and_a_malformed_id_400(pending, review):
    unknown = encode_check_ref("R-1", "2026-11-21T09:00:00.000Z#nope")
    body = {"reviewed_count": 3, "resolution": "CONFIRMED"}
    assert call("GET", f"/checks/{unknown}") == (
        404,
        {"error": "no check 2026-11-21T09:00:00.000Z#nope of bin R-1"},
    )
    assert call("POST", f"/checks/{unknown}/review", body=body)[0] == 404
    status, error = call("GET", "/checks/not-an-id")
    assert status == 400
    assert "is not a check id: check ids come from GET /checks" in error["error"]
    assert call("GET", "/nothing/here") == (404, {"error": "no route GET /nothing/here"})


def test_a_check_that_is_not_pending_is_a_conflict(review, warehouse, endpoint, event_source):
    ref = photograph(warehouse, endpoint, event_source, "M-1", 3, distribution(3, 0.95))
    status, error = call(
        "POST", f"/checks/{ref}/review", body={"reviewed_count": 3, "resolution": "FALSE_ALARM"}
    )
    assert status == 409
    assert error["error"].endswith("of bin M-1 is not pending review (status MATCH)")
    assert "review_state" not in stored(review, ref)


def test_an_access_token_names_the_user_in_username(pending, review):
    claims = {"username": "carol", "token_use": "access", "client_id": "x"}
    body = {"reviewed_count": 3, "resolution": "CONFIRMED"}
    status, answer = call("POST", f"/checks/{pending}/review", body=body, claims=claims)
    assert (status, answer["check"]["reviewer"]) == (200, "carol")


def test_the_queue_pages_with_a_cursor_and_filters_by_bin(
    review, warehouse, endpoint, event_source
):
    for minute, bin_id in enumerate(["L-1", "L-2", "L-1", "L-3", "L-1"]):
        photograph(
            warehouse,
            endpoint,
            event_source,
            bin_id,
            5,
            distribution(minute % 3, 0.95),
            capture=f"c{minute}",
            captured_at=f"2026-11-21T09:0{minute}:00Z",
        )

    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        status, page = call("GET", "/checks", query=query)
        assert status == 200
        assert len(page["checks"]) <= 2
        seen += [c["capture_id"] for c in page["checks"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == ["c0", "c1", "c2", "c3", "c4"]

    status, page = call("GET", "/checks", query={"bin": "L-1", "limit": 2})
    assert [c["capture_id"] for c in page["checks"]] == ["c0", "c2"]
    status, rest = call("GET", "/checks", query={"bin": "L-1", "cursor": page["cursor"]})
    assert [c["capture_id"] for c in rest["checks"]] == ["c4"]
    assert rest["cursor"] is None
    status, error = call("GET", "/checks", query={"bin": "L-2", "cursor": page["cursor"]})
    assert (status, error["error"]) == (
        400,
        "this cursor belongs to another listing than bin L-2's",
    )


def test_a_notice_that_cannot_be_sent_says_so_and_can_be_sent_again(
    pending, review, monkeypatch, inbox
):
    from lambdas.review.service import ReviewService

    monkeypatch.setenv("ALERTS_TOPIC_ARN", review.alerts_topic_arn + "-gone")
    review_handler.get_service.cache_clear()
    status, error = call(
        "POST", f"/checks/{pending}/review", body={"reviewed_count": 3, "resolution": "CONFIRMED"}
    )
    assert status == 502
    assert "is settled, but its REVIEWED message could not be published" in error["error"]
    assert stored(review, pending)["review_state"] == "REVIEWED"
    assert inbox.alerts() == []

    monkeypatch.setenv("ALERTS_TOPIC_ARN", review.alerts_topic_arn)
    review_handler.get_service.cache_clear()
    service: ReviewService = review_handler.get_service()
    service.notify(*parse_check_ref(pending))
    [notice] = inbox.alerts()
    assert notice["attributes"]["status"] == "REVIEWED"
