"""``bincheck demo``: the whole system on one machine, on real photos.

Starts the local stack (moto server, the model server, checker workers; see
``local/stack.py``), registers bins with expected quantities (some wrong on purpose),
uploads photos, waits until every one is checked, then prints the verdicts and the alerts
that reached the alerts topic and writes an HTML report. ``keep_running`` leaves the stack
up for your own uploads and the review page until Ctrl-C.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .console import format_table
from .local.stack import LocalStack, StackOptions

SAMPLES = Path(__file__).parent / "samples"
INBOX = "bincheck-alerts-inbox"


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


def run_demo(
    options: StackOptions,
    *,
    photos: Path | None = None,
    limit: int = 60,
    report: Path = Path("reports/demo.html"),
    keep_running: bool = False,
) -> int:
    folder = photos or SAMPLES
    labels = read_labels(folder, limit)
    print("starting the local stack (AWS emulation, model server, checker workers)...")
    with LocalStack(options) as stack:
        print(
            f"  AWS emulation (moto) at {stack.aws.url}\n"
            f"  model server at {stack.model.url} (endpoint {stack.names.endpoint})\n"
            f"  {options.workers} checker workers; logs in {options.log_dir}/"
        )
        print(stack.review_sign_in())
        inbox = AlertInbox(stack)
        uploads = _load_and_upload(stack, folder, labels)
        _wait(stack, uploads)
        checks = read_checks(stack)
        alerts = inbox.drain()
        dead = stack.queue_depth(stack.resources.dead_letter_queue_url)
        _print_summary(checks, alerts, stack)
        _write_report(stack, checks, alerts, report)
        if dead:
            print(
                f"\n{dead} photo events went to the DLQ: see {options.log_dir}/checker.log, "
                "then `bincheck dlq redrive` (with the stack kept running)."
            )
        if keep_running:
            _serve_until_interrupted(stack, inbox, f"BIN-{next(iter(labels))}")
    print("local stack stopped")
    return 1 if dead else 0


def _load_and_upload(stack: LocalStack, folder: Path, labels: dict[str, int]) -> int:
    from tqdm import tqdm

    from contract.bins import Bin
    from lambdas.checker.adapters.bins import BinsTable

    bins = [
        Bin(f"BIN-{image_id}", expected_quantity(i, count))
        for i, (image_id, count) in enumerate(labels.items())
    ]
    BinsTable(stack.names.bins_table, stack.client("dynamodb")).put_many(bins)
    s3, bucket = stack.client("s3"), stack.names.bucket
    for image_id in tqdm(labels, desc="upload", unit="photo"):
        body = (folder / "images" / f"{image_id}.jpg").read_bytes()
        s3.put_object(Bucket=bucket, Key=f"bins/BIN-{image_id}/{image_id}.jpg", Body=body)
    # Two photos that cannot be checked: a bin the warehouse system never registered, and
    # an empty upload.
    s3.put_object(Bucket=bucket, Key="bins/BIN-UNREGISTERED/x1.jpg", Body=body)
    s3.put_object(Bucket=bucket, Key=f"bins/{bins[0].bin_id}/empty.jpg", Body=b"")
    return len(labels) + 2


def _wait(stack: LocalStack, uploads: int) -> None:
    from tqdm import tqdm

    with tqdm(total=uploads, desc="check", unit="photo") as bar:

        def update() -> None:
            settled = stack.workers.received - stack.workers.failed
            bar.update(min(settled, uploads) - bar.n)

        stack.wait_until_settled(on_poll=update)


def read_checks(stack: LocalStack) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    plain = TypeDeserializer()
    pages = stack.client("dynamodb").get_paginator("scan")
    return [
        {name: plain.deserialize(value) for name, value in item.items()}
        for page in pages.paginate(TableName=stack.names.checks_table)
        for item in page["Items"]
    ]


class AlertInbox:
    """A queue subscribed to the alerts topic, as an operator's subscription would be."""

    def __init__(self, stack: LocalStack) -> None:
        self.sqs = stack.client("sqs")
        self.url = self.sqs.create_queue(QueueName=INBOX)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        stack.client("sns").subscribe(
            TopicArn=stack.resources.alerts_topic_arn,
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
        )

    def drain(self) -> list[dict[str, Any]]:
        alerts = []
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                alerts.append(json.loads(json.loads(message["Body"])["Message"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return alerts


def _print_summary(checks: list[dict], alerts: list[dict], stack: LocalStack) -> None:
    statuses = Counter(c["status"] for c in checks)
    print("\nChecks by status")
    print(format_table(("status", "checks"), sorted((s, str(n)) for s, n in statuses.items())))
    print(f"\nAlerts received on {stack.names.alerts_topic} ({len(alerts)})")
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
    versions = sorted({c["model_version"] for c in checks if c.get("model_version")})
    print(
        f"\n{len(checks)} photos checked by model {', '.join(versions) or '(none)'}. Bins "
        "marked as wrong were given a wrong expected quantity on purpose; see `bincheck "
        "evaluate` for how often this model is sure enough to say MATCH or MISMATCH."
    )


def _write_report(stack: LocalStack, checks: list[dict], alerts: list[dict], path: Path) -> None:
    from botocore.exceptions import ClientError

    from .report import render

    s3 = stack.client("s3")

    def read_photo(uri: str) -> bytes | None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            return None

    config = stack.config
    html = render(
        checks,
        alerted={a["image_uri"] for a in alerts},
        read_photo=read_photo,
        title="bincheck: local run",
        subtitle=f"Checker and model on {len(checks)} photos, AWS emulated by moto.",
        thresholds=(config.match_threshold, config.mismatch_threshold),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html)
    print(f"\nReport: {path.resolve().as_uri()}")


def _serve_until_interrupted(stack: LocalStack, inbox: AlertInbox, example_bin: str) -> None:
    aws = stack.aws.url
    bucket = stack.names.bucket
    print(
        f"""
The local stack is up. From another terminal, any AWS SDK or CLI reaches it with its
endpoint and dummy credentials (the bincheck commands read the same environment):

  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1

  # a photo to check, for a bin the demo registered (or register yours with bins load)
  aws --endpoint-url {aws} s3 cp photo.jpg s3://{bucket}/bins/{example_bin}/capture-1.jpg

  # the alerts (the topic delivers them to this queue)
  aws --endpoint-url {aws} sqs receive-message --queue-url {inbox.url} \\
      --max-number-of-messages 10

  export AWS_ENDPOINT_URL={aws}    # for bincheck, and the AWS CLI without --endpoint-url
  bincheck bins load bins.csv          # CSV: bin_id,expected_quantity
  bincheck checks list --since 10m     # the verdicts
  bincheck dlq show                    # photo events the checker gave up on
  bincheck dlq redrive

(`bincheck` is {Path(sys.executable).parent / "bincheck"}.)

The checks waiting for a person (UNCERTAIN, MISMATCH): open the review page in a browser
and sign in as the demo reviewer; `bincheck review list` shows the same queue.
{stack.review_sign_in()}

Ctrl-C stops everything.""",
        flush=True,
    )

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # `kill`, `docker stop` and service managers send SIGTERM: stop as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
