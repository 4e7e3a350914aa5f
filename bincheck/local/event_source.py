"""Feed an SQS queue to a Lambda handler the way Lambda's SQS event source mapping does.

Batches of up to ``batch_size`` messages in Lambda's event format; messages the handler
reports in ``batchItemFailures`` (or all of them, if it raises) stay on the queue and come
back after the visibility timeout; SQS's own redrive policy moves them to the DLQ after the
configured receives. Successes are deleted.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict, Any], dict | None]


@dataclass
class LocalLambdaContext:
    """The parts of Lambda's context object that Powertools and the handler read."""

    function_name: str = "bincheck-checker"
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


@dataclass
class PollResult:
    received: int = 0
    failed: int = 0

    def __iadd__(self, other: PollResult) -> PollResult:
        self.received += other.received
        self.failed += other.failed
        return self


class SqsEventSource:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_time_s: int = 0,
        retry_delay_s: int | None = None,
        function_timeout_s: float = 60.0,
    ) -> None:
        """``retry_delay_s`` shortens the visibility timeout of failed messages (tests and
        demos need not wait the queue's full timeout); ``None`` keeps SQS's behaviour."""
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.wait_time_s = wait_time_s
        self.retry_delay_s = retry_delay_s
        self.function_timeout_s = function_timeout_s
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def poll(self) -> PollResult:
        """Receive one batch, invoke the handler once, settle the messages."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_time_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return PollResult()
        event = {"Records": [self._record(message) for message in messages]}
        try:
            response = self.handler(event, LocalLambdaContext(timeout_s=self.function_timeout_s))
            failed_ids = {
                f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])
            }
        except Exception:
            log.exception(
                "handler raised: the whole batch of %d returns to the queue", len(messages)
            )
            failed_ids = {message["MessageId"] for message in messages}
        succeeded = [m for m in messages if m["MessageId"] not in failed_ids]
        for start in range(0, len(succeeded), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(succeeded[start : start + 10])
                ],
            )
        if self.retry_delay_s is not None:
            for message in messages:
                if message["MessageId"] in failed_ids:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.retry_delay_s,
                    )
        return PollResult(received=len(messages), failed=len(failed_ids))

    def drain(self, max_polls: int = 10_000) -> PollResult:
        """Poll until a receive comes back empty (failures wait out their delay first)."""
        total = PollResult()
        for _ in range(max_polls):
            result = self.poll()
            if not result.received:
                return total
            total += result
        raise RuntimeError(f"queue not drained after {max_polls} polls")

    def _record(self, message: dict) -> dict:
        body = message["Body"]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.queue_arn.split(":")[3],
        }
