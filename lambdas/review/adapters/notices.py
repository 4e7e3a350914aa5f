"""The alerts topic, where settled reviews are published for the warehouse system."""

from __future__ import annotations

from typing import Any

from contract.check import Alert


class NoticeTopic:
    def __init__(self, topic_arn: str, client: Any) -> None:
        self.topic_arn = topic_arn
        self.client = client

    def publish(self, notice: Alert) -> str:
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=notice.subject,
            Message=notice.message,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in notice.attributes.items()
            },
        )
        return response["MessageId"]
