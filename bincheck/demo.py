"""``bincheck demo``: the checker's event path on real photos, AWS emulated in-process.

Until the local-stack issue lands, this is the demo: moto emulates S3, SQS, DynamoDB and
SNS inside this process, the real checker handler is fed from the queue the way Lambda's
event source would feed it, and the endpoint is the shipped default model answering
through its SageMaker handler functions in-process (``local/inprocess_endpoint.py``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

SAMPLES = Path(__file__).parent / "samples"
QUIET = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def read_labels(folder: Path, limit: int) -> dict[str, int]:
    """``image_id -> count`` for the first ``limit`` labelled photos that exist."""
    labels: dict[str, int] = {}
    with (folder / "labels.csv").open(newline="") as rows:
        for row in csv.DictReader(rows):
            if len(labels) == limit:
                break
            if (folder / "images" / f"{row['image_id']}.jpg").is_file():
                labels[row["image_id"]] = int(row["count"])
    if not labels:
        raise ValueError(f"{folder} has no photos listed in labels.csv")
    return labels


def expected_quantity(position: int, label: int) -> int:
    """Every 4th bin is off by one, every 5th by three: the warehouse system is wrong."""
    if position % 5 == 4:
        return label + 3 if label < 3 else label - 3
    if position % 4 == 3:
        return label + 1 if label < 5 else label - 1
    return label


def run_demo(photos: Path | None = None, limit: int = 60, model: Path | None = None) -> int:
    from model.artifact import read_artifact
    from model.predictor import Predictor

    from .cli import DEFAULT_MODEL

    folder = photos or SAMPLES
    labels = read_labels(folder, limit)
    network, card = read_artifact(model or DEFAULT_MODEL)
    predictor = Predictor(network, card, fast=True)
    with mock.patch.dict(os.environ, QUIET):
        from moto import mock_aws

        with mock_aws():
            return _run(folder, labels, predictor)


def _run(folder: Path, labels: dict[str, int], predictor) -> int:
    import boto3
    from tqdm import tqdm

    from lambdas.checker import handler
    from lambdas.checker.adapters.bins import BinsTable
    from lambdas.checker.domain.bins import Bin

    from .cli import format_table
    from .local import inprocess_endpoint
    from .local.event_source import SqsEventSource
    from .local.resources import provision

    resources = provision()
    os.environ.update(resources.checker_environment())
    handler.get_app.cache_clear()
    inbox = _subscribe_inbox(resources.alerts_topic_arn)

    bins = [
        Bin(f"BIN-{image_id}", expected_quantity(i, count))
        for i, (image_id, count) in enumerate(labels.items())
    ]
    BinsTable(resources.names.bins_table, boto3.client("dynamodb")).put_many(bins)
    bucket = resources.names.bucket
    inprocess_endpoint.attach(handler.get_app().checker.endpoint.client, predictor)

    s3 = boto3.client("s3")
    for image_id in tqdm(labels, desc="upload", unit="photo"):
        body = (folder / "images" / f"{image_id}.jpg").read_bytes()
        s3.put_object(Bucket=bucket, Key=f"bins/BIN-{image_id}/{image_id}.jpg", Body=body)
    # Two photos that cannot be checked: a bin the warehouse system never registered, and
    # an empty upload.
    s3.put_object(Bucket=bucket, Key="bins/BIN-UNREGISTERED/x1.jpg", Body=body)
    s3.put_object(Bucket=bucket, Key=f"bins/{bins[0].bin_id}/empty.jpg", Body=b"")

    source = SqsEventSource(boto3.client("sqs"), resources.queue_url, handler.lambda_handler)
    # The handler prints CloudWatch EMF metric lines to stdout, as Lambda wants; not here.
    with tqdm(desc="check", unit="message") as progress, redirect_stdout(io.StringIO()):
        while (result := source.poll()).received:
            progress.update(result.received)

    records = list(_checks(resources.names.checks_table))
    statuses = Counter(r["status"] for r in records)
    print("\nChecks by status")
    print(format_table(("status", "checks"), sorted((s, str(n)) for s, n in statuses.items())))
    alerts = inbox()
    print(f"\nAlerts received on {resources.names.alerts_topic} ({len(alerts)})")
    print(
        format_table(
            ("status", "bin", "expected", "counted", "p"),
            [
                (
                    a["status"],
                    a["bin_id"],
                    str(a["expected_quantity"]),
                    str(a["predicted_count"]),
                    f"{a['probability']:.2f}",
                )
                for a in sorted(alerts, key=lambda a: a["bin_id"])
            ],
        )
    )
    print(
        f"\n{len(records)} photos checked by model {predictor.card.version}. Bins marked as "
        "wrong were given a wrong expected quantity on purpose; see `bincheck evaluate` for "
        "how often this model is sure enough to say MATCH or MISMATCH."
    )
    return 0


def _checks(table_name: str):
    import boto3

    paginator = boto3.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=table_name):
        for item in page["Items"]:
            yield {name: next(iter(value.values())) for name, value in item.items()}


def _subscribe_inbox(topic_arn: str):
    """Subscribe a queue to the alerts topic; return a function that drains it."""
    import boto3

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="demo-alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def drain() -> list[dict]:
        alerts = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                alerts.append(json.loads(json.loads(message["Body"])["Message"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return alerts

    return drain
