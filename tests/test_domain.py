"""The shared contract: keys, decision rule, timestamps, bins, check record and alerts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contract.bins import Bin
from contract.check import CheckRecord, build_alert
from contract.decision import (
    CountPrediction,
    InvalidPrediction,
    Status,
    Thresholds,
    is_stale,
    judge,
)
from contract.keys import InvalidPhotoKey, decode_event_key, parse_photo_key
from contract.times import format_timestamp, parse_timestamp

BAD_BIN_ID = "bin id must be 1-64 characters of [A-Za-z0-9._-]"

# --- photo keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "capture_id", "extension", "content_type"),
    [
        ("bins/A-001/cap-1.jpg", "cap-1", "jpg", "image/jpeg"),
        ("bins/A-001/cap.2.JPEG", "cap.2", "jpeg", "image/jpeg"),
        ("bins/A-001/cap-3.Png", "cap-3", "png", "image/png"),
    ],
)
def test_valid_photo_keys_are_parsed(key, capture_id, extension, content_type):
    photo = parse_photo_key(key)
    assert photo is not None
    assert (photo.key, photo.bin_id, photo.capture_id) == (key, "A-001", capture_id)
    assert photo.extension == extension
    assert photo.content_type == content_type


def test_bin_id_of_exactly_64_characters_is_accepted():
    bin_id = "b" * 64
    assert parse_photo_key(f"bins/{bin_id}/c.jpg").bin_id == bin_id


@pytest.mark.parametrize("key", ["photos/A-001/cap.jpg", "A-001/cap.jpg", "bins", ""])
def test_keys_outside_bins_are_not_ours(key):
    assert parse_photo_key(key) is None


@pytest.mark.parametrize(
    "key", [f"bins/{'b' * 65}/c.jpg", "bins/A 001/c.jpg", "bins/A*1/c.jpg", "bins//c.jpg"]
)
def test_unidentifiable_bin_raises_without_bin_id(key):
    with pytest.raises(InvalidPhotoKey) as caught:
        parse_photo_key(key)
    assert caught.value.bin_id is None
    assert caught.value.reason == BAD_BIN_ID
    assert str(caught.value) == f"{BAD_BIN_ID}: {key!r}"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("bins/A-001/sub/c.jpg", "expected bins/<bin_id>/<capture_id>.<ext>"),
        ("bins/A-001", "expected bins/<bin_id>/<capture_id>.<ext>"),
        ("bins/A-001/cap", "photo name needs a capture id and an extension"),
        ("bins/A-001/.jpg", "photo name needs a capture id and an extension"),
        ("bins/A-001/cap.gif", "unsupported photo type '.gif'"),
        ("bins/A-001/cap.GIF", "unsupported photo type '.gif'"),
    ],
)
def test_broken_photo_name_raises_with_bin_id(key, reason):
    with pytest.raises(InvalidPhotoKey) as caught:
        parse_photo_key(key)
    assert (caught.value.bin_id, caught.value.reason, caught.value.key) == ("A-001", reason, key)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("bins/A-001/cap+1.jpg", "bins/A-001/cap 1.jpg"),
        ("bins/A-001/2026-11-21T09%3A00%3A00.jpg", "bins/A-001/2026-11-21T09:00:00.jpg"),
        ("bins%2FA-001%2Fcap.jpg", "bins/A-001/cap.jpg"),
    ],
)
def test_decode_event_key(raw, decoded):
    assert decode_event_key(raw) == decoded


# --- decision rule ----------------------------------------------------------------------


def prediction(*probabilities: float, count: int = 0) -> CountPrediction:
    return CountPrediction(count, probabilities, len(probabilities) - 1, "m-1")


JUDGED = {
    0.9: "MATCH",
    0.5: "MATCH",
    0.49: "UNCERTAIN",
    0.11: "UNCERTAIN",
    0.1: "MISMATCH",
    0.0: "MISMATCH",
}


@pytest.mark.parametrize(("p", "status"), JUDGED.items())
def test_judge_at_and_around_thresholds(p, status):
    verdict = judge(1, prediction(1.0 - p, p), Thresholds(match=0.5, mismatch=0.1))
    assert (verdict.status, verdict.probability) == (Status(status), p)


@pytest.mark.parametrize("expected_quantity", [3, 4, 100])
def test_quantities_from_max_count_use_the_k_or_more_bucket(expected_quantity):
    counted = prediction(0.0, 0.05, 0.05, 0.9, count=3)
    assert counted.probability_of(expected_quantity) == 0.9
    assert judge(expected_quantity, counted, Thresholds()).status is Status.MATCH


def test_probability_of_negative_quantity_is_an_error():
    with pytest.raises(ValueError, match="quantity must be >= 0, got -1"):
        prediction(0.5, 0.5).probability_of(-1)


@pytest.mark.parametrize(("match", "mismatch"), [(0.5, 0.5), (0.3, 0.6), (1.5, 0.1), (0.5, -0.1)])
def test_inconsistent_thresholds_are_rejected(match, mismatch):
    message = f"thresholds need 0 <= mismatch < match <= 1, got mismatch={mismatch} match={match}"
    with pytest.raises(ValueError, match=re.escape(message)):
        Thresholds(match=match, mismatch=mismatch)


MISSING = object()
GOOD = {"count": 2, "probabilities": [0.1, 0.2, 0.6, 0.1], "max_count": 3, "model_version": "v7"}


def test_prediction_from_a_good_response():
    assert CountPrediction.from_response(GOOD) == CountPrediction(2, (0.1, 0.2, 0.6, 0.1), 3, "v7")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"count": MISSING}, r"malformed endpoint response: KeyError\('count'\)"),
        ({"model_version": MISSING}, "malformed endpoint response: KeyError"),
        ({"probabilities": [0.5, 0.5]}, "expected 4 probabilities .* got 2"),
        ({"probabilities": [0.1, 0.2, 0.3, 0.1]}, "sum to 1"),
        ({"probabilities": [-0.1, 0.3, 0.7, 0.1]}, r"must lie in \[0, 1\]"),
        ({"count": 4}, r"count 4 outside 0\.\.3"),
        ({"count": 2.0}, "count and max_count must be integers"),
        ({"count": "2"}, "count and max_count must be integers"),
        ({"max_count": 0, "probabilities": [1.0]}, "max_count >= 1"),
        ({"probabilities": None}, "malformed endpoint response: TypeError"),
    ],
)
def test_bad_responses_are_invalid_predictions(change, message):
    payload = {**GOOD, **change}
    payload = {name: value for name, value in payload.items() if value is not MISSING}
    with pytest.raises(InvalidPrediction, match=message):
        CountPrediction.from_response(payload)


NOON = datetime(2026, 11, 21, 12, tzinfo=UTC)


@pytest.mark.parametrize(("shift_s", "stale"), [(1, True), (0, False), (-1, False)])
def test_photo_taken_before_the_last_update_is_stale(shift_s, stale):
    assert is_stale(NOON, NOON + timedelta(seconds=shift_s)) is stale


def test_bin_never_updated_is_not_stale():
    assert is_stale(NOON, None) is False


# --- timestamps and bins ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["2026-11-21T09:00:00Z", "2026-11-21T10:00:00+01:00", "2026-11-21T09:00:00"]
)
def test_parse_timestamp_gives_utc(text):
    parsed = parse_timestamp(text)
    assert parsed == datetime(2026, 11, 21, 9, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


def test_parse_timestamp_rejects_garbage():
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp: 'yesterday'"):
        parse_timestamp("yesterday")


def test_format_timestamp_is_utc_milliseconds_z():
    moment = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == "2026-11-21T09:00:00.123Z"
    assert format_timestamp(datetime(2026, 11, 21, 9, tzinfo=UTC)) == "2026-11-21T09:00:00.000Z"


def test_bin_parse_good_rows():
    assert Bin.parse(" A-001 ", " 3 ") == Bin("A-001", 3)
    assert Bin.parse("A-001", "0", "2026-11-21T10:00:00+01:00") == Bin(
        "A-001", 0, datetime(2026, 11, 21, 9, tzinfo=UTC)
    )


@pytest.mark.parametrize("quantity", ["-1", "three", "1.5", ""])
def test_bin_parse_rejects_bad_quantities(quantity):
    message = f"expected quantity must be a whole number >= 0, got {quantity!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        Bin.parse("A-001", quantity)


def test_bin_parse_rejects_bad_bin_id():
    with pytest.raises(ValueError, match=r"bin id 'A/1' is not 1-64 characters"):
        Bin.parse("A/1", "3")


# --- alerts -----------------------------------------------------------------------------


def record(status: Status, **fields) -> CheckRecord:
    base = {
        "bin_id": "A-002",
        "capture_id": "cap-7",
        "image_uri": "s3://photos/bins/A-002/cap-7.jpg",
        "etag": "abc",
        "captured_at": "2026-11-21T09:00:00.000Z",
        "checked_at": "2026-11-21T09:00:01.000Z",
        "status": status,
    }
    return CheckRecord(**{**base, **fields})


@pytest.mark.parametrize(
    ("checked", "subject"),
    [
        (
            record(Status.MISMATCH, expected_quantity=5, predicted_count=3, probability=0.04),
            "MISMATCH: bin A-002 expected 5, model counted 3 (p=0.04)",
        ),
        (
            record(Status.UNCERTAIN, expected_quantity=3, predicted_count=3, probability=0.333),
            "UNCERTAIN: bin A-002 expected 3, model counted 3 (p=0.33)",
        ),
        (record(Status.UNKNOWN_BIN), "UNKNOWN_BIN: bin A-002 is not in the bins table"),
        (
            record(Status.INVALID_IMAGE, detail="photo is empty"),
            "INVALID_IMAGE: photo of bin A-002 could not be checked: photo is empty",
        ),
    ],
)
def test_alert_subject(checked, subject):
    assert build_alert(checked).subject == subject


@pytest.mark.parametrize("detail", ["x" * 500, "Bild unlesbar: ÄÖÜ — 画像 " * 10])
def test_alert_subject_is_short_ascii(detail):
    subject = build_alert(record(Status.INVALID_IMAGE, detail=detail)).subject
    assert subject.isascii()
    assert len(subject) < 100  # SNS: "less than 100 characters"
    assert subject.startswith("INVALID_IMAGE: photo of bin A-002 could not be checked: ")


def test_alert_subject_has_no_line_breaks():
    detail = "bad\nimage\t!"
    subject = build_alert(record(Status.INVALID_IMAGE, detail=detail)).subject
    assert subject == "INVALID_IMAGE: photo of bin A-002 could not be checked: bad image !"


@pytest.mark.parametrize("field", ["count", "max_count"])
def test_prediction_rejects_booleans_as_integers(field):
    payload = {"count": 1, "probabilities": [0.5, 0.5], "max_count": 1, "model_version": "v"}
    with pytest.raises(InvalidPrediction):
        CountPrediction.from_response({**payload, field: True})


def test_naive_datetimes_format_as_utc():
    assert format_timestamp(datetime(2026, 11, 21, 9, 0)) == "2026-11-21T09:00:00.000Z"


def test_alert_message_and_attributes():
    checked = record(
        Status.MISMATCH,
        expected_quantity=5,
        predicted_count=3,
        probability=0.04,
        model_version="v7",
        latency_ms=12.5,
    )
    alert = build_alert(checked)
    body = json.loads(alert.message)
    assert body == {
        "subject": alert.subject,
        "check_id": "2026-11-21T09:00:00.000Z#cap-7",
        "bin_id": "A-002",
        "capture_id": "cap-7",
        "image_uri": "s3://photos/bins/A-002/cap-7.jpg",
        "etag": "abc",
        "captured_at": "2026-11-21T09:00:00.000Z",
        "checked_at": "2026-11-21T09:00:01.000Z",
        "status": "MISMATCH",
        "expected_quantity": 5,
        "predicted_count": 3,
        "probability": 0.04,
        "model_version": "v7",
        "latency_ms": 12.5,
        "detail": None,
    }
    assert alert.attributes == {"status": "MISMATCH", "bin_id": "A-002"}
