"""``bincheck dlq``: look at the photo events the checker gave up on, and send them back.

Redrive copies each message to the source queue before deleting it from the DLQ, so a
failure half-way loses nothing: at worst a message is delivered twice, which the checker's
idempotency (bucket, key, eTag) absorbs. The source queue is the one whose redrive policy
names the DLQ (``ListDeadLetterSourceQueues``) unless ``--to`` says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from contract.keys import decode_event_key

# Long polling asks every SQS server; a short poll may answer "empty" while messages wait.
_WAIT_S = 1
# A message being moved stays hidden this long; if the move fails it comes back by itself.
_HIDE_S = 60


def queue_url(sqs: Any, name_or_url: str) -> str:
    if name_or_url.startswith(("https://", "http://")):
        return name_or_url
    return sqs.get_queue_url(QueueName=name_or_url)["QueueUrl"]


def source_queue(sqs: Any, dlq_url: str) -> str:
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    if len(sources) != 1:
        raise ValueError(
            f"{dlq_url} is the DLQ of {len(sources)} queues ({', '.join(sources) or 'none'}): "
            "name the one to send messages to with --to"
        )
    return sources[0]


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _batches(sqs: Any, url: str, *, hide_s: int) -> Iterator[list[dict]]:
    while messages := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=_WAIT_S,
        VisibilityTimeout=hide_s,
        MessageAttributeNames=["All"],
    ).get("Messages"):
        yield messages


def redrive(
    sqs: Any,
    dlq_url: str,
    to_url: str,
    *,
    limit: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Move up to ``limit`` messages (all, by default); how many moved."""
    moved = 0
    for messages in _batches(sqs, dlq_url, hide_s=_HIDE_S):
        if limit is not None and len(messages) > limit - moved:
            for extra in messages[limit - moved :]:  # not ours to move: visible again now
                sqs.change_message_visibility(
                    QueueUrl=dlq_url, ReceiptHandle=extra["ReceiptHandle"], VisibilityTimeout=0
                )
            messages = messages[: limit - moved]
        sent = sqs.send_message_batch(
            QueueUrl=to_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": message["Body"],
                    **(
                        {"MessageAttributes": message["MessageAttributes"]}
                        if message.get("MessageAttributes")
                        else {}
                    ),
                }
                for i, message in enumerate(messages)
            ],
        )
        if sent.get("Failed"):
            # Nothing was deleted: the messages reappear in the DLQ after _HIDE_S.
            raise RuntimeError(f"sending to {to_url} failed: {sent['Failed']}")
        sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                for i, message in enumerate(messages)
            ],
        )
        moved += len(messages)
        if on_batch is not None:
            on_batch(len(messages))
        if limit is not None and moved >= limit:
            break
    return moved


def peek(sqs: Any, dlq_url: str, *, limit: int) -> list[str]:
    """What the first ``limit`` messages are about (S3 keys), leaving them where they are."""
    described: list[str] = []
    handles: list[str] = []
    for messages in _batches(sqs, dlq_url, hide_s=30):
        for message in messages:
            described.append(describe(message["Body"]))
            handles.append(message["ReceiptHandle"])
        if len(described) >= limit:
            break
    for handle in handles:  # visible again at once, for the next reader or a redrive
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return described[:limit]


def describe(body: str) -> str:
    try:
        records = json.loads(body).get("Records", [])
        return ", ".join(
            f"s3://{r['s3']['bucket']['name']}/{decode_event_key(r['s3']['object']['key'])}"
            for r in records
        )
    except (ValueError, AttributeError, KeyError, TypeError):
        return f"(not an S3 event) {body[:120]}"
