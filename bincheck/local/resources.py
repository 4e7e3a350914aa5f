"""Create the checker's resources (bucket + queue + DLQ, tables, topic) on an AWS emulation.

Shapes follow the deployed system: the photos bucket notifies the queue for ``bins/``
objects, the queue redrives to a DLQ after ``max_receive_count`` receives, the checks table
is keyed by bin and capture and indexed by status and by pending review (a sparse index),
the idempotency table expires by TTL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from contract.keys import PHOTO_PREFIX
from contract.names import BY_STATUS_INDEX, PENDING_REVIEW_INDEX, ResourceNames
from contract.review import PENDING_REVIEW_KEY


@dataclass(frozen=True)
class Resources:
    names: ResourceNames
    queue_url: str
    dead_letter_queue_url: str
    alerts_topic_arn: str

    def checker_environment(self) -> dict[str, str]:
        """The environment the checker function gets, pointing at these resources."""
        return {
            "BINS_TABLE": self.names.bins_table,
            "CHECKS_TABLE": self.names.checks_table,
            "IDEMPOTENCY_TABLE": self.names.idempotency_table,
            "ALERTS_TOPIC_ARN": self.alerts_topic_arn,
            "ENDPOINT_NAME": self.names.endpoint,
        }

    def review_environment(self) -> dict[str, str]:
        """The environment the review function gets, pointing at these resources."""
        return {
            "CHECKS_TABLE": self.names.checks_table,
            "BINS_TABLE": self.names.bins_table,
            "ALERTS_TOPIC_ARN": self.alerts_topic_arn,
        }


def provision(
    names: ResourceNames = ResourceNames(),
    *,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    visibility_timeout_s: int = 60,
    max_receive_count: int = 3,
) -> Resources:
    def client(service: str) -> Any:
        return (session or boto3).client(service, region_name=region, endpoint_url=endpoint_url)

    sqs, s3, dynamodb, sns = client("sqs"), client("s3"), client("dynamodb"), client("sns")

    dlq_url = sqs.create_queue(QueueName=names.dead_letter_queue)["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]

    if region == "us-east-1":
        s3.create_bucket(Bucket=names.bucket)
    else:
        s3.create_bucket(
            Bucket=names.bucket, CreateBucketConfiguration={"LocationConstraint": region}
        )
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": _queue_arn(sqs, queue_url),
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PHOTO_PREFIX}]}},
                }
            ]
        },
    )

    _table(dynamodb, names.bins_table, [("bin_id", "HASH")])
    _table(
        dynamodb,
        names.checks_table,
        [("bin_id", "HASH"), ("check_id", "RANGE")],
        indexes=[
            (BY_STATUS_INDEX, [("status", "HASH"), ("check_id", "RANGE")]),
            (PENDING_REVIEW_INDEX, [(PENDING_REVIEW_KEY, "HASH"), ("check_id", "RANGE")]),
        ],
    )
    _table(dynamodb, names.idempotency_table, [("id", "HASH")])
    dynamodb.update_time_to_live(
        TableName=names.idempotency_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )

    topic_arn = sns.create_topic(Name=names.alerts_topic)["TopicArn"]
    return Resources(names, queue_url, dlq_url, topic_arn)


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _table(
    dynamodb: Any,
    name: str,
    key: list[tuple[str, str]],
    indexes: list[tuple[str, list[tuple[str, str]]]] = (),
) -> None:
    attributes = {attribute for attribute, _ in key}
    attributes |= {attribute for _, index_key in indexes for attribute, _ in index_key}
    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in key],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
    }
    if indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index_name,
                "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in index_key],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index_name, index_key in indexes
        ]
    dynamodb.create_table(**request)
