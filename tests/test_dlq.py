"""``bincheck dlq``: show and redrive against SQS (moto), nothing lost on the way."""

from __future__ import annotations

import json

import boto3
import pytest

from bincheck import dlq
from bincheck.cli import main
from bincheck.local import s3_events


def bodies(sqs, url: str) -> list[str]:
    seen = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            seen.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return seen


@pytest.fixture
def dead(resources):
    """Five photo events (one key URL-encoded) and one stray message in the DLQ."""
    sqs = boto3.client("sqs")
    sent = [
        s3_events.object_created(
            "bincheck-photos", f"bins/A {i}/c{i}.jpg", etag=f'"e{i}"', size=1, region="us-east-1"
        )
        for i in range(5)
    ] + ["not an S3 event"]
    for body in sent:
        sqs.send_message(QueueUrl=resources.dead_letter_queue_url, MessageBody=body)
    bodies(sqs, resources.queue_url)  # the bucket notification's s3:TestEvent
    return sent


def test_show_counts_and_names_the_photos_leaving_them_in_place(resources, dead, capsys):
    assert main(["dlq", "show"]) == 0
    out = capsys.readouterr().out
    assert f"6 messages in {resources.dead_letter_queue_url}" in out
    assert "s3://bincheck-photos/bins/A 0/c0.jpg" in out
    assert "(not an S3 event) not an S3 event" in out
    assert dlq.depth(boto3.client("sqs"), resources.dead_letter_queue_url) == 6


def test_redrive_moves_every_message_unchanged_to_the_queue_it_came_from(resources, dead, capsys):
    assert main(["dlq", "redrive"]) == 0
    assert f"moved 6 messages from {resources.dead_letter_queue_url}" in capsys.readouterr().out
    sqs = boto3.client("sqs")
    assert sorted(bodies(sqs, resources.queue_url)) == sorted(dead)
    assert dlq.depth(sqs, resources.dead_letter_queue_url) == 0


def test_redrive_with_a_limit_leaves_the_rest_visible(resources, dead):
    sqs = boto3.client("sqs")
    moved = dlq.redrive(sqs, resources.dead_letter_queue_url, resources.queue_url, limit=4)
    assert moved == 4
    assert len(bodies(sqs, resources.queue_url)) == 4
    # The two not moved are visible again at once, not hidden for a minute.
    assert len(bodies(sqs, resources.dead_letter_queue_url)) == 2


def test_a_queue_that_is_no_dlq_needs_to(resources, capsys):
    sqs = boto3.client("sqs")
    bodies(sqs, resources.queue_url)  # the bucket notification's s3:TestEvent
    url = sqs.create_queue(QueueName="lonely")["QueueUrl"]
    assert main(["dlq", "redrive", "--dlq", "lonely"]) == 2
    assert "name the one to send messages to with --to" in capsys.readouterr().err
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"x": 1}))
    assert main(["dlq", "redrive", "--dlq", "lonely", "--to", "bincheck-photo-events"]) == 0
    assert bodies(sqs, resources.queue_url) == [json.dumps({"x": 1})]
