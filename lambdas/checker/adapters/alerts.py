"""The alerts topic."""

from __future__ import annotations

from typing import Any

from contract.check import Alert


class AlertsTopic:
    def __init__(self, topic_arn: str, client: Any) -> None:
        self.topic_arn = topic_arn
        self.client = client

    def publish(self, alert: Alert) -> str:
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=alert.subject,
            Message=alert.message,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in alert.attributes.items()
            },
        )
        return response["MessageId"]
