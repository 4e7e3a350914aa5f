"""The local stack end to end: moto server, the model server with the shipped model, and
the unchanged checker handler in worker processes, on real photos."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from bincheck.cli import main
from bincheck.commands.common import DEFAULT_MODEL
from bincheck.demo import AlertInbox, read_checks
from bincheck.local import s3_events
from bincheck.local.ports import free_port
from bincheck.local.stack import LocalStack, StackOptions
from bincheck.local.user_pool import add_reviewer, create_user_pool, sign_in
from contract.decision import Status
from contract.review import decode_check_ref, encode_check_ref

from .conftest import SAMPLE_COUNTS, default_model_card, sample_photo

ALERTING = {Status.MISMATCH.value, Status.UNCERTAIN.value}


def start(tmp_path: Path, **options) -> LocalStack:
    return LocalStack(
        StackOptions(
            model=DEFAULT_MODEL,
            aws_port=free_port(),
            model_port=free_port(),
            review_port=free_port(),
            workers=2,
            retry_delay_s=1,
            max_receive_count=2,
            log_dir=tmp_path,
            **options,
        )
    ).__enter__()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def inbox(stack):
    return AlertInbox(stack)


def set_bins(stack: LocalStack, quantities: dict[str, int]) -> None:
    table = stack.client("dynamodb")
    for bin_id, quantity in quantities.items():
        table.put_item(
            TableName=stack.names.bins_table,
            Item={"bin_id": {"S": bin_id}, "expected_quantity": {"N": str(quantity)}},
        )


def upload(stack: LocalStack, key: str, body: bytes) -> dict:
    return stack.client("s3").put_object(Bucket=stack.names.bucket, Key=key, Body=body)


def checks_of(stack: LocalStack, prefix: str) -> list[dict]:
    return [c for c in read_checks(stack) if c["bin_id"].startswith(prefix)]


def test_every_photo_gets_one_record_and_alerts_reach_the_topic(stack, inbox):
    # Real counts for most bins; two (with 0 and 1 items) the warehouse system has wrong
    # by four, well inside the model's range (K = 6 means "6 or more").
    expected = {f"E2E-{image_id}": count for image_id, count in SAMPLE_COUNTS.items()}
    wrong = ["E2E-00047", "E2E-08128"]
    for bin_id in wrong:
        expected[bin_id] += 4
    set_bins(stack, expected)
    for image_id in SAMPLE_COUNTS:
        upload(stack, f"bins/E2E-{image_id}/{image_id}.jpg", sample_photo(image_id))
    upload(stack, "bins/E2E-NEVER-REGISTERED/a.jpg", sample_photo())
    upload(stack, f"bins/{wrong[0]}/empty.jpg", b"")

    stack.wait_until_settled(timeout_s=300)

    checks = checks_of(stack, "E2E-")
    assert Counter((c["bin_id"], c["capture_id"]) for c in checks) == Counter(
        [(f"E2E-{i}", i) for i in SAMPLE_COUNTS]
        + [("E2E-NEVER-REGISTERED", "a"), (wrong[0], "empty")]
    )
    by_capture = {c["capture_id"]: c for c in checks}
    assert by_capture["a"]["status"] == Status.UNKNOWN_BIN.value
    assert by_capture["empty"]["status"] == Status.INVALID_IMAGE.value
    config = stack.config
    for image_id in SAMPLE_COUNTS:
        check = by_capture[image_id]
        assert check["expected_quantity"] == expected[check["bin_id"]]
        assert check["model_version"] == default_model_card()["version"]
        assert check["image_uri"] == f"s3://bincheck-photos/bins/E2E-{image_id}/{image_id}.jpg"
        p = float(check["probability"])
        verdict = (
            Status.MATCH
            if p >= config.match_threshold
            else Status.MISMATCH
            if p <= config.mismatch_threshold
            else Status.UNCERTAIN
        )
        assert check["status"] == verdict.value
    # A bin off by four is never a MATCH for this model.
    assert {by_capture[b.removeprefix("E2E-")]["status"] for b in wrong} <= ALERTING

    alerts = [a for a in inbox.drain() if a["bin_id"].startswith("E2E-")]
    alerting = {c["image_uri"]: c for c in checks if c["status"] in ALERTING}
    assert sorted(a["image_uri"] for a in alerts) == sorted(alerting)
    for alert in alerts:
        check = alerting[alert["image_uri"]]
        assert (alert["status"], alert["expected_quantity"], alert["predicted_count"]) == (
            check["status"],
            check["expected_quantity"],
            check["predicted_count"],
        )
    assert stack.queue_depth(stack.resources.dead_letter_queue_url) == 0


def test_a_duplicate_notification_makes_no_second_record_or_alert(stack, inbox):
    set_bins(stack, {"DUP-1": 40})  # far off: an alert is certain
    body = sample_photo("00579")
    put = upload(stack, "bins/DUP-1/c1.jpg", body)
    stack.wait_until_settled(timeout_s=120)
    # S3 delivers at least once: the same notification again, twice.
    duplicate = s3_events.object_created(
        stack.names.bucket,
        "bins/DUP-1/c1.jpg",
        etag=put["ETag"],
        size=len(body),
        region="us-east-1",
    )
    sqs = stack.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=duplicate)
    stack.wait_until_settled(timeout_s=120)

    assert len(checks_of(stack, "DUP-")) == 1
    assert len([a for a in inbox.drain() if a["bin_id"] == "DUP-1"]) == 1


def test_an_endpoint_outage_ends_in_the_dlq_and_redrive_brings_it_back(stack, monkeypatch, capsys):
    set_bins(stack, {f"OUT-{i}": 1 for i in range(3)})
    stack.model.stop()
    for i in range(3):
        upload(stack, f"bins/OUT-{i}/c.jpg", sample_photo())
    stack.wait_until_settled(timeout_s=120)
    assert checks_of(stack, "OUT-") == []
    dlq = stack.resources.dead_letter_queue_url
    assert stack.queue_depth(dlq) == 3

    stack.model.start()
    for name, value in {
        "AWS_ENDPOINT_URL": stack.aws.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["dlq", "show"]) == 0
    shown = capsys.readouterr().out
    assert f"3 messages in {dlq}" in shown
    assert "s3://bincheck-photos/bins/OUT-0/c.jpg" in shown
    assert main(["dlq", "redrive"]) == 0
    assert f"moved 3 messages from {dlq} to {stack.resources.queue_url}" in capsys.readouterr().out
    stack.wait_until_settled(timeout_s=120)

    assert sorted(c["bin_id"] for c in checks_of(stack, "OUT-")) == ["OUT-0", "OUT-1", "OUT-2"]
    assert stack.queue_depth(dlq) == 0


def test_a_busy_port_is_refused_before_anything_starts(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--aws-port", str(port), "--log-dir", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error
    assert "Choose another port with --aws-port" in error


# --- the review API -----------------------------------------------------------------------


def pending_check(stack: LocalStack, bin_id: str) -> str:
    """A photo of a bin registered with 40 items: never a MATCH, so it waits for review."""
    set_bins(stack, {bin_id: 40})
    upload(stack, f"bins/{bin_id}/c1.jpg", sample_photo("00579"))
    stack.wait_until_settled(timeout_s=120)
    [check] = checks_of(stack, bin_id)
    assert check["review_state"] == "PENDING"
    return encode_check_ref(bin_id, check["check_id"])


def bearer(stack: LocalStack, reviewer=None) -> dict[str, str]:
    token = sign_in(stack.client("cognito-idp"), stack.user_pool, reviewer or stack.reviewer)
    return {"Authorization": f"Bearer {token}"}


def test_a_reviewer_works_through_the_queue_on_the_local_api(stack, inbox):
    ref = pending_check(stack, "REV-1")
    api, headers = stack.review_api.url, bearer(stack)

    listed = requests.get(f"{api}/checks", params={"bin": "REV-1"}, headers=headers, timeout=30)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["checks"]] == [ref]
    shown = requests.get(f"{api}/checks/{ref}", headers=headers, timeout=30).json()
    assert len(shown["probabilities"]) == shown["max_count"] + 1
    photo = requests.get(shown["photo_url"], timeout=30)
    assert (photo.status_code, photo.content) == (200, sample_photo("00579"))

    settled = requests.post(
        f"{api}/checks/{ref}/review",
        json={"reviewed_count": 2, "resolution": "CONFIRMED"},
        headers=headers,
        timeout=30,
    )
    assert settled.status_code == 200
    assert settled.json()["check"]["reviewer"] == stack.reviewer.username
    [notice] = [a for a in inbox.drain() if a.get("review_state") == "REVIEWED"]
    assert (notice["bin_id"], notice["reviewed_count"]) == ("REV-1", 2)


def settle_at_once(url: str, answers: dict[str, tuple[dict, int]]) -> dict[str, requests.Response]:
    """Each reviewer's POST, released together from a barrier on its own thread."""
    start = threading.Barrier(len(answers))

    def settle(headers: dict, count: int) -> requests.Response:
        start.wait()
        body = {"reviewed_count": count, "resolution": "CONFIRMED"}
        return requests.post(url, json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(len(answers)) as pool:
        futures = {name: pool.submit(settle, *answer) for name, answer in answers.items()}
    return {name: future.result() for name, future in futures.items()}


def test_two_reviewers_settling_one_check_at_once_exactly_one_wins(stack, inbox):
    second = add_reviewer(stack.client("cognito-idp"), stack.user_pool, "reviewer-2")
    headers = {stack.reviewer.username: bearer(stack), second.username: bearer(stack, second)}
    refs = [pending_check(stack, f"RACE-{i}") for i in range(3)]
    inbox.drain()

    for ref in refs:
        answers = settle_at_once(
            f"{stack.review_api.url}/checks/{ref}/review",
            {name: (headers[name], count) for count, name in enumerate(headers, start=1)},
        )
        assert sorted(a.status_code for a in answers.values()) == [200, 409]
        [winner] = [name for name, a in answers.items() if a.status_code == 200]
        [loser] = [a for a in answers.values() if a.status_code == 409]
        counted = answers[winner].json()["check"]["reviewed_count"]
        assert (
            f"already reviewed: CONFIRMED, {counted} counted by {winner}" in (loser.json()["error"])
        )
        [check] = checks_of(stack, decode_check_ref(ref)[0])
        assert (check["reviewer"], check["reviewed_count"]) == (winner, counted)
    # One REVIEWED message per check: none for the reviewers who lost.
    notices = [a for a in inbox.drain() if a.get("review_state") == "REVIEWED"]
    assert sorted(n["bin_id"] for n in notices) == ["RACE-0", "RACE-1", "RACE-2"]


def forged(token: str) -> str:
    """The same claims, signed by a key that is not the pool's."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, RSAKey.generate_key(2048))


def test_a_request_without_a_token_of_the_pool_and_client_is_401(stack):
    ref = pending_check(stack, "AUTH-1")
    cognito = stack.client("cognito-idp")
    token = bearer(stack)["Authorization"].removeprefix("Bearer ")
    other_pool = create_user_pool(cognito, "us-east-1")
    outsider = sign_in(cognito, other_pool, add_reviewer(cognito, other_pool, "outsider"))
    other_client = cognito.create_user_pool_client(
        UserPoolId=stack.user_pool.pool_id,
        ClientName="another-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    same_user_other_client = sign_in(
        cognito, replace(stack.user_pool, client_id=other_client), stack.reviewer
    )

    refusals = {
        "no header": ({}, "no token in the Authorization header"),
        "not a JWT": ({"Authorization": "Bearer nonsense"}, "not a valid signed JWT"),
        "another pool": ({"Authorization": f"Bearer {outsider}"}, "Invalid claim: 'iss'"),
        "another client": (
            {"Authorization": f"Bearer {same_user_other_client}"},
            "issued for another app client",
        ),
        "forged": ({"Authorization": f"Bearer {forged(token)}"}, "bad_signature"),
    }
    for case, (headers, reason) in refusals.items():
        for method, path, body in [
            ("GET", "/checks", None),
            ("GET", f"/checks/{ref}", None),
            ("POST", f"/checks/{ref}/review", {"reviewed_count": 1, "resolution": "CONFIRMED"}),
        ]:
            answer = requests.request(
                method, f"{stack.review_api.url}{path}", json=body, headers=headers, timeout=30
            )
            assert answer.status_code == 401, (case, path)
            assert answer.json() == {"message": "Unauthorized"}
            assert reason in answer.headers["www-authenticate"], case
    [check] = checks_of(stack, "AUTH-1")
    assert check["review_state"] == "PENDING"  # nothing changed
    # The token itself works with the pool's own client.
    answer = requests.get(
        f"{stack.review_api.url}/checks/{ref}", headers={"Authorization": token}, timeout=30
    )
    assert answer.status_code == 200
