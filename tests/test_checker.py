"""The checker event path against moto: S3 upload -> SQS -> handler -> tables, topic."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import unquote_plus

import boto3
from botocore.awsrequest import AWSResponse

from bincheck.local.event_source import LocalLambdaContext
from lambdas.checker import handler

from .conftest import (
    MODEL_VERSION,
    SERVER_ERROR,
    THROTTLED,
    distribution,
    invoke,
    model_error,
)


def test_s3_test_event_is_acknowledged(resources, event_source, warehouse):
    # Configuring the bucket notification put an s3:TestEvent on the queue.
    result = event_source.drain()
    assert (result.received, result.failed) == (1, 0)
    assert warehouse.checks() == []


def test_matching_photo_is_a_match_without_alert(warehouse, endpoint, event_source, inbox):
    warehouse.set_bin("A-001", 3)
    endpoint.answer(distribution(3, 0.8))
    warehouse.upload("bins/A-001/cap-1.jpg", captured_at="2026-11-21T10:00:00+01:00")

    assert event_source.drain().failed == 0

    [check] = warehouse.checks()
    assert check["status"] == "MATCH"
    assert check["expected_quantity"] == 3
    assert check["predicted_count"] == 3
    assert check["probability"] == Decimal("0.8")
    assert check["model_version"] == MODEL_VERSION
    assert check["image_uri"] == "s3://bincheck-photos/bins/A-001/cap-1.jpg"
    assert check["captured_at"] == "2026-11-21T09:00:00.000Z"
    assert check["check_id"] == "2026-11-21T09:00:00.000Z#cap-1"
    assert check["latency_ms"] >= 0
    assert inbox.alerts() == []


def test_wrong_expected_quantity_is_a_mismatch_with_one_alert(
    warehouse, endpoint, event_source, inbox
):
    warehouse.set_bin("A-002", 5)
    endpoint.answer(distribution(3, 0.95))  # p(5) = 0.01, under the mismatch threshold
    warehouse.upload("bins/A-002/cap-7.jpg", captured_at="2026-11-21T10:00:00Z")

    assert event_source.drain().failed == 0

    [check] = warehouse.checks()
    assert check["status"] == "MISMATCH"
    [alert] = inbox.alerts()
    assert alert["subject"] == "MISMATCH: bin A-002 expected 5, model counted 3 (p=0.01)"
    assert alert["attributes"] == {"status": "MISMATCH", "bin_id": "A-002"}
    body = alert["body"]
    assert body["subject"] == alert["subject"]
    assert body["bin_id"] == "A-002"
    assert body["status"] == "MISMATCH"
    assert body["expected_quantity"] == 5
    assert body["predicted_count"] == 3
    assert body["probability"] == 0.01
    assert body["image_uri"] == "s3://bincheck-photos/bins/A-002/cap-7.jpg"
    assert body["captured_at"] == "2026-11-21T10:00:00.000Z"
    assert body["model_version"] == MODEL_VERSION


def test_unsure_model_is_uncertain_and_alerts(warehouse, endpoint, event_source, inbox):
    warehouse.set_bin("A-003", 2)
    endpoint.answer(distribution(2, 0.3))
    warehouse.upload("bins/A-003/cap-1.jpg")

    event_source.drain()

    [check] = warehouse.checks()
    assert check["status"] == "UNCERTAIN"
    assert check["probability"] == Decimal("0.3")
    assert [a["attributes"]["status"] for a in inbox.alerts()] == ["UNCERTAIN"]


def test_quantity_above_max_count_uses_k_or_more_mass(warehouse, endpoint, event_source):
    warehouse.set_bin("A-012", 12)
    endpoint.answer(distribution(12, 0.7))  # 0.7 on "5 or more"
    warehouse.upload("bins/A-012/cap-1.jpg", "00172")

    event_source.drain()

    [check] = warehouse.checks()
    assert (check["status"], check["predicted_count"]) == ("MATCH", 5)


def test_photo_taken_before_the_bin_changed_is_stale(warehouse, endpoint, event_source, inbox):
    warehouse.set_bin("A-004", 4, updated_at="2026-11-21T12:00:00Z")
    calls = endpoint.fail()
    warehouse.upload("bins/A-004/cap-1.jpg", captured_at="2026-11-21T11:59:00Z")

    event_source.drain()

    [check] = warehouse.checks()
    assert check["status"] == "STALE"
    assert check["detail"] == "bin quantity updated at 2026-11-21T12:00:00.000Z"
    assert calls == []  # no GPU time spent on a photo that cannot confirm anything
    assert inbox.alerts() == []


def test_photo_of_an_unknown_bin_is_recorded(warehouse, endpoint, event_source, inbox):
    calls = endpoint.fail()
    warehouse.upload("bins/NOPE-9/cap-1.jpg")

    assert event_source.drain().failed == 0

    [check] = warehouse.checks()
    assert check["status"] == "UNKNOWN_BIN"
    assert "expected_quantity" not in check
    assert calls == []
    assert inbox.alerts() == []


def test_undecodable_photo_reported_by_the_model_is_invalid_image(
    warehouse, endpoint, event_source
):
    warehouse.set_bin("A-005", 1)
    endpoint.fail(model_error(400, '{"error": "cannot decode image: truncated JPEG"}'))
    warehouse.upload("bins/A-005/cap-1.jpg", body=b"\xff\xd8\xff\xe0 truncated")

    result = event_source.drain()

    assert result.failed == 0  # permanent: recorded once, never retried
    [check] = warehouse.checks()
    assert check["status"] == "INVALID_IMAGE"
    assert "cannot decode image: truncated JPEG" in check["detail"]
    assert check["expected_quantity"] == 1


def test_the_models_refusal_is_one_readable_line_in_the_record_and_the_alert(
    warehouse, endpoint, event_source, inbox, monkeypatch
):
    """The first line of what the model said: the text of its JSON error, or of a plain
    body (the toolkit's default: the message, then a traceback naming server paths)."""
    monkeypatch.setenv("ALERT_STATUSES", "INVALID_IMAGE")
    warehouse.set_bin("A-009", 1)
    toolkit_text = (
        "corrupt or truncated JPEG image: image file is truncated (16 bytes not processed)\n"
        "Traceback (most recent call last):\n"
        '  File "/opt/ml/model/code/model/inference.py", line 46, in wrapper\n'
        "    return function(*args, **kwargs)\n"
    )
    endpoint.fail(
        model_error(415, json.dumps({"error": "not a JPEG or PNG image\nsecond line"})),
        model_error(400, toolkit_text),
    )
    warehouse.upload("bins/A-009/cap-1.jpg", body=b"\xff\xd8 one")
    warehouse.upload("bins/A-009/cap-2.jpg", body=b"\xff\xd8 two")

    assert event_source.drain().failed == 0

    expected = {
        "model rejected the photo: not a JPEG or PNG image",
        "model rejected the photo: corrupt or truncated JPEG image: image file is truncated "
        "(16 bytes not processed)",
    }
    assert {c["detail"] for c in warehouse.checks()} == expected
    alerts = inbox.alerts()
    assert {a["body"]["detail"] for a in alerts} == expected
    assert {a["attributes"]["status"] for a in alerts} == {"INVALID_IMAGE"}


def test_empty_and_oversized_photos_never_reach_the_model(
    warehouse, endpoint, event_source, monkeypatch
):
    monkeypatch.setenv("MAX_IMAGE_BYTES", "20000")
    warehouse.set_bin("A-006", 1)
    calls = endpoint.fail()
    warehouse.upload("bins/A-006/empty.jpg", body=b"")
    warehouse.upload("bins/A-006/big.jpg", "00047")  # 29,531 bytes

    event_source.drain()

    details = {c["capture_id"]: (c["status"], c["detail"]) for c in warehouse.checks()}
    assert details == {
        "empty": ("INVALID_IMAGE", "photo is empty"),
        "big": ("INVALID_IMAGE", "photo is 29531 bytes, above the limit of 20000"),
    }
    assert calls == []


def test_bad_keys_under_bins_are_recorded_or_ignored(warehouse, endpoint, event_source):
    warehouse.set_bin("A-007", 1)
    warehouse.upload("bins/A-007/photo.gif")
    warehouse.upload("bins/A-007/nested/photo.jpg")
    warehouse.upload("bins/bad bin!/photo.jpg")  # no bin to record it against

    assert event_source.drain().failed == 0

    details = sorted((c["capture_id"], c["detail"]) for c in warehouse.checks())
    assert details == [
        ("photo.gif", "unsupported photo type '.gif'"),
        ("photo.jpg", "expected bins/<bin_id>/<capture_id>.<ext>"),
    ]


def test_url_encoded_keys_are_decoded(warehouse, endpoint, event_source):
    warehouse.set_bin("A-008", 3)
    endpoint.answer(distribution(3, 0.9))
    calls = endpoint.fail()
    key = warehouse.upload("bins/A-008/shot 10:00+01.jpg")

    event_source.drain()

    [check] = warehouse.checks()
    assert check["capture_id"] == "shot 10:00+01"
    assert check["image_uri"] == f"s3://bincheck-photos/{key}"
    assert json.loads(calls[0]["body"]) == {"s3_uri": f"s3://bincheck-photos/{key}"}


def test_keys_outside_bins_are_acknowledged_without_a_record(resources, warehouse):
    event = _sqs_event(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2026-11-21T10:00:00.000Z",
                    "s3": {
                        "bucket": {"name": "bincheck-photos"},
                        "object": {"key": "exports/report.csv", "size": 10, "eTag": "e1"},
                    },
                }
            ]
        }
    )
    assert invoke(event) == {"batchItemFailures": []}
    assert warehouse.checks() == []


def test_duplicate_delivery_makes_one_record_and_one_alert(
    resources, warehouse, endpoint, event_source, inbox
):
    warehouse.set_bin("A-009", 4)
    endpoint.answer(distribution(1, 0.9))
    calls = endpoint.fail()
    warehouse.upload("bins/A-009/cap-1.jpg")
    # SQS delivers at least once: put the same notification on the queue a second time.
    sqs = boto3.client("sqs")
    notification = _queued_bodies(sqs, resources.queue_url)[-1]
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=notification)

    result = event_source.drain()

    assert (result.received, result.failed) == (3, 0)  # test event + the photo, twice
    assert len(warehouse.checks()) == 1
    assert len(inbox.alerts()) == 1
    assert len(calls) == 1


def test_throttled_endpoint_is_retried_by_botocore(warehouse, endpoint, event_source):
    warehouse.set_bin("A-010", 2)
    endpoint.answer(distribution(2, 0.9))
    calls = endpoint.fail(THROTTLED)
    warehouse.upload("bins/A-010/cap-1.jpg")

    assert event_source.drain().failed == 0

    assert [c["status"] for c in warehouse.checks()] == ["MATCH"]
    assert len(calls) == 2


def test_endpoint_failing_every_time_fails_the_record_then_dead_letters_it(
    resources, warehouse, endpoint, event_source, inbox
):
    warehouse.set_bin("A-011", 2)
    calls = endpoint.fail(*[SERVER_ERROR] * 30)
    warehouse.upload("bins/A-011/cap-1.jpg")
    sqs = boto3.client("sqs")
    body = _queued_bodies(sqs, resources.queue_url)[-1]

    response = invoke(_sqs_event(json.loads(body), message_id="m-1"))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert len(calls) == 3  # AWS_MAX_ATTEMPTS, then the failure surfaces
    assert warehouse.checks() == []
    assert inbox.alerts() == []

    # Through the queue: redelivered until maxReceiveCount, then in the DLQ, not lost.
    result = event_source.drain()
    assert result.failed == 2  # plus the peek above: 3 receives, the queue's maxReceiveCount
    dead = _queued_bodies(sqs, resources.dead_letter_queue_url)
    assert [unquote_plus(json.loads(b)["Records"][0]["s3"]["object"]["key"]) for b in dead] == [
        "bins/A-011/cap-1.jpg"
    ]
    assert warehouse.checks() == []


def test_model_server_error_and_malformed_answers_are_retried_not_recorded(
    resources, warehouse, endpoint
):
    warehouse.set_bin("A-013", 2)
    endpoint.fail(model_error(503, "worker died"))
    endpoint.answer({"count": 2, "probabilities": [0.5, 0.5], "max_count": 5, "model_version": "x"})
    warehouse.upload("bins/A-013/a.jpg")
    warehouse.upload("bins/A-013/b.jpg")
    bodies = _queued_bodies(boto3.client("sqs"), resources.queue_url)[1:]

    response = invoke(
        {"Records": [_sqs_record(json.loads(b), f"m-{i}") for i, b in enumerate(bodies)]}
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]}
    assert warehouse.checks() == []


def test_message_that_is_not_an_s3_notification_fails(resources):
    response = invoke({"Records": [_sqs_record("not json at all", "m-1", raw=True)]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def _queued_bodies(sqs, queue_url: str) -> list[str]:
    """Bodies on a queue, left in place (visibility timeout 0)."""
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [m["Body"] for m in messages]


def _sqs_record(body, message_id: str, *, raw: bool = False) -> dict:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body if raw else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bincheck-photo-events",
        "awsRegion": "us-east-1",
    }


def _sqs_event(notification: dict, message_id: str = "m-1") -> dict:
    return {"Records": [_sqs_record(notification, message_id)]}


def test_alert_lost_to_an_sns_outage_is_published_on_redelivery(
    resources, warehouse, endpoint, event_source, inbox
):
    warehouse.set_bin("A-014", 5)
    endpoint.answer(distribution(1, 0.95))
    sns = handler.get_app().checker.alerts.client
    outages = [1]  # the first delivery's publish fails (retries included)

    def outage(**kwargs):
        # before-call stops the request before moto (or AWS) sees it, as Stubber does.
        if outages and outages.pop():
            error = {"Error": {"Code": "InternalError", "Message": "SNS is down"}}
            return AWSResponse(None, 500, {}, None), error
        return None

    sns.meta.events.register_first("before-call.sns.Publish", outage)
    warehouse.upload("bins/A-014/cap-1.jpg")

    result = event_source.drain()

    assert result.failed == 1  # the first delivery failed on publishing
    assert [c["status"] for c in warehouse.checks()] == ["MISMATCH"]
    assert [a["body"]["bin_id"] for a in inbox.alerts()] == ["A-014"]


def test_records_are_handed_back_when_the_invocation_is_nearly_over(resources, warehouse, endpoint):
    warehouse.set_bin("A-015", 2)
    calls = endpoint.fail()
    warehouse.upload("bins/A-015/cap-1.jpg")
    body = _queued_bodies(boto3.client("sqs"), resources.queue_url)[-1]

    # Default budget: 3 attempts x (2 s connect + 10 s read) + 2 x 5 s = 46 s per check.
    response = handler.lambda_handler(
        _sqs_event(json.loads(body), message_id="m-1"), LocalLambdaContext(timeout_s=30)
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert calls == []
    assert warehouse.checks() == []
