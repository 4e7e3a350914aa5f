"""The review's contract and configuration: check ids, the record's review fields, the
REVIEWED notice, the settings. No mocks."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from contract.check import CheckRecord, build_alert, build_review_notice
from contract.decision import Status
from contract.review import (
    BinUpdate,
    InvalidCheckRef,
    Resolution,
    Review,
    ReviewState,
    decode_check_ref,
    encode_check_ref,
    resolution_problem,
)
from lambdas.checker.settings import ConfigurationError as CheckerConfigurationError
from lambdas.checker.settings import Settings as CheckerSettings
from lambdas.review.settings import ConfigurationError, Settings

PENDING = CheckRecord(
    bin_id="A-002",
    capture_id="cam 1#7/ü",
    image_uri="s3://photos/bins/A-002/cam 1#7/ü.jpg",
    etag="abc",
    captured_at="2026-11-21T09:00:00.000Z",
    checked_at="2026-11-21T09:00:01.000Z",
    status=Status.MISMATCH,
    expected_quantity=5,
    predicted_count=3,
    probability=0.04,
    probabilities=(0.01, 0.02, 0.03, 0.9, 0.04, 0.0),
    bin_updated_at="2026-11-20T08:00:00.000Z",
    review_state=ReviewState.PENDING,
)
REVIEWED = replace(
    PENDING,
    review_state=ReviewState.REVIEWED,
    reviewed_count=3,
    reviewer="alice",
    reviewed_at="2026-11-21T10:00:00.000Z",
    resolution=Resolution.CONFIRMED,
    note="two items behind the divider",
    bin_update=BinUpdate.DISABLED,
)


def test_a_check_id_survives_any_capture_id_and_is_url_safe():
    ref = encode_check_ref(PENDING.bin_id, PENDING.check_id)
    assert set(ref) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_check_ref(ref) == ("A-002", "2026-11-21T09:00:00.000Z#cam 1#7/ü")


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "not-an-id",
        "%%%",
        "QS0w!!!!MDIvMjAyNiN4",  # "A-002/2026#x" with characters the decoder would skip
        "QS0wMDIvbm8taGFzaA",  # "A-002/no-hash": not a check id
        "YmFkIGJpbi8yMDI2I3g",  # "bad bin/2026#x": a bin id with a space
    ],
)
def test_anything_else_is_not_a_check_id(ref):
    with pytest.raises(InvalidCheckRef, match="is not a check id"):
        decode_check_ref(ref)


def test_a_record_with_its_review_round_trips_through_plain_json():
    plain = json.loads(json.dumps(REVIEWED.to_dict()))
    assert plain["probabilities"] == [0.01, 0.02, 0.03, 0.9, 0.04, 0.0]
    assert plain["review_state"] == "REVIEWED"
    assert CheckRecord.from_dict(plain) == REVIEWED


def test_records_without_review_fields_read_as_before():
    """The fields added for reviews appear only when set: an alert's body is unchanged."""
    plain = replace(PENDING, review_state=None, probabilities=None, bin_updated_at=None)
    assert set(plain.to_dict()) == {
        "check_id", "bin_id", "capture_id", "image_uri", "etag", "captured_at", "checked_at",
        "status", "expected_quantity", "predicted_count", "probability", "model_version",
        "latency_ms", "detail",
    }  # fmt: skip
    assert json.loads(build_alert(PENDING).message)["review_state"] == "PENDING"


def test_the_reviewed_notice_carries_the_count_and_filterable_attributes():
    notice = build_review_notice(REVIEWED)
    assert notice.subject == "REVIEWED CONFIRMED: bin A-002 holds 3 (expected 5), counted by alice"
    assert notice.attributes == {"status": "REVIEWED", "resolution": "CONFIRMED", "bin_id": "A-002"}
    body = json.loads(notice.message)
    assert body["subject"] == notice.subject
    assert (body["reviewed_count"], body["expected_quantity"], body["status"]) == (3, 5, "MISMATCH")
    assert body["note"] == "two items behind the divider"


def test_a_subject_stays_one_short_ascii_line_whatever_the_reviewer_is_called():
    notice = build_review_notice(replace(REVIEWED, reviewer="Zoë\nO'Brien" + "x" * 120))
    assert notice.subject.isascii()
    assert "\n" not in notice.subject
    assert len(notice.subject) < 100


def test_only_a_reviewed_check_has_a_notice():
    with pytest.raises(ValueError, match="is not reviewed"):
        build_review_notice(PENDING)


@pytest.mark.parametrize(
    ("count", "resolution", "problem"),
    [
        (3, Resolution.CONFIRMED, None),
        (5, Resolution.FALSE_ALARM, None),
        (5, Resolution.CONFIRMED, "that is a FALSE_ALARM"),
        (0, Resolution.FALSE_ALARM, "that is CONFIRMED"),
    ],
)
def test_the_resolution_must_agree_with_the_count(count, resolution, problem):
    review = Review(count, resolution, "alice", "2026-11-21T10:00:00.000Z")
    found = resolution_problem(5, review)
    assert found == problem if problem is None else problem in found


CHECKER_ENV = {
    "BINS_TABLE": "b",
    "CHECKS_TABLE": "c",
    "IDEMPOTENCY_TABLE": "i",
    "ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
    "ENDPOINT_NAME": "e",
}


def test_review_statuses_default_to_mismatch_and_uncertain():
    settings = CheckerSettings.from_env(CHECKER_ENV)
    assert settings.review_statuses == {Status.MISMATCH, Status.UNCERTAIN}
    chosen = CheckerSettings.from_env(CHECKER_ENV | {"REVIEW_STATUSES": "MATCH, MISMATCH"})
    assert chosen.review_statuses == {Status.MATCH, Status.MISMATCH}
    assert CheckerSettings.from_env(CHECKER_ENV | {"REVIEW_STATUSES": ""}).review_statuses == set()


def test_only_judged_statuses_can_be_reviewed():
    with pytest.raises(CheckerConfigurationError) as refused:
        CheckerSettings.from_env(CHECKER_ENV | {"REVIEW_STATUSES": "MISMATCH,STALE,NOPE"})
    message = str(refused.value)
    assert "REVIEW_STATUSES has unknown statuses ['NOPE']" in message
    assert "REVIEW_STATUSES may not name ['STALE']: a review settles a count" in message


REVIEW_ENV = {"CHECKS_TABLE": "c", "BINS_TABLE": "b", "ALERTS_TOPIC_ARN": "arn:aws:sns:x"}


def test_review_settings_default_to_leaving_the_bins_table_alone():
    settings = Settings.from_env(REVIEW_ENV)
    assert (settings.update_bins, settings.photo_url_ttl_s) == (False, 300)
    assert Settings.from_env(REVIEW_ENV | {"UPDATE_BINS": "True"}).update_bins is True


def test_review_settings_report_every_problem_at_once():
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"UPDATE_BINS": "maybe", "PHOTO_URL_TTL_S": "7200"})
    assert str(refused.value) == (
        "review configuration: "
        "CHECKS_TABLE is required; BINS_TABLE is required; ALERTS_TOPIC_ARN is required; "
        "UPDATE_BINS must be true or false, got 'maybe'; "
        "PHOTO_URL_TTL_S must be > 0 and <= 3600, got '7200'"
    )
