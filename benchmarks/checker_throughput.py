"""Checker benchmark: cold import time of the handler and its throughput against moto.

What it measures, so later changes can be compared on the same machine:

1. Cold import: ``import lambdas.checker.handler`` timed inside a fresh interpreter, several
   times (median and min), next to ``import boto3`` alone as a reference.
2. Throughput: N photos uploaded to a moto bucket, one bin each (every 5th bin's expected
   quantity deliberately wrong, so MISMATCH alerts get published), the endpoint's answers
   queued through moto's API, and S3 notifications delivered to ``lambda_handler`` in
   Lambda's SQS event format, in batches. moto answers in-process, so the figure is the
   handler's own overhead (parsing, DynamoDB/S3/SNS calls against moto, idempotency,
   logging and metrics), not a real endpoint's latency.
3. Duplicates: the same events delivered a second time; idempotency must keep exactly one
   check record per photo.

Exits non-zero when a record failed, or when the checks table, the alerts published or the
idempotency records differ from one per photo (statuses and alerts as planned).

Run it with ``make bench`` (``make bench ARGS="--photos 200"``) or
``.venv/bin/python benchmarks/checker_throughput.py --photos 500``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

# The repository root, importable even without the editable install .venv has.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
import requests
from moto import mock_aws
from moto.sns import sns_backends

from bincheck.local.event_source import LocalLambdaContext
from bincheck.local.resources import Resources, provision
from contract.bins import Bin
from lambdas.checker.adapters.bins import BinsTable

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "bincheck" / "samples"
MOTO_ENDPOINT_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
MAX_COUNT = 5  # the model's K: its last probability is the mass of "K or more"
LABEL_MASS = 0.9  # probability the fake model puts on the true count
WRONG_BIN_EVERY = 5

BENCH_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "BinCheckerBench",
    "POWERTOOLS_SERVICE_NAME": "bin-checker",
}

TIMED_IMPORT = (
    "import time; started = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - started)"
)


# --- 1. cold import -----------------------------------------------------------------------


def import_seconds(module: str) -> float:
    """Seconds one fresh interpreter spends importing ``module``."""
    completed = subprocess.run(
        [sys.executable, "-c", TIMED_IMPORT.format(module=module)],
        cwd=REPO_ROOT,
        env={**os.environ, **BENCH_ENVIRONMENT},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def report_imports(runs: int) -> None:
    timings = {
        module: [import_seconds(module) * 1000 for _ in range(runs)]
        for module in ("lambdas.checker.handler", "boto3")
    }
    handler_ms, boto3_ms = timings["lambdas.checker.handler"], timings["boto3"]
    print(f"Cold import (fresh interpreter, {runs} runs)        median        min")
    print(f"  lambdas.checker.handler                 {_ms(handler_ms)}")
    print(f"  boto3 alone (reference)                 {_ms(boto3_ms)}")
    rest = statistics.median(handler_ms) - statistics.median(boto3_ms)
    print(f"  handler minus boto3 (medians)           {rest:9.1f} ms")
    print("  (Powertools, the X-Ray SDK its Tracer loads, and the checker's own modules)")


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):9.1f} ms {min(values):9.1f} ms"


# --- 2. the workload ----------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    bin_id: str
    key: str
    image: bytes
    label: int  # the true count on the photo
    expected_quantity: int  # what the bins table says

    @property
    def expected_status(self) -> str:
        return "MATCH" if self.expected_quantity == self.label else "MISMATCH"


@dataclass(frozen=True)
class Upload:
    photo: Photo
    etag: str  # as S3 notifications carry it: no quotes
    size: int
    event_time: str


def sample_photos() -> list[tuple[bytes, int]]:
    """The sample images with their labelled counts, in labels.csv order."""
    with (SAMPLES / "labels.csv").open() as labels:
        rows = list(csv.DictReader(labels))
    return [
        ((SAMPLES / "images" / f"{row['image_id']}.jpg").read_bytes(), int(row["count"]))
        for row in rows
    ]


def plan_photos(count: int) -> list[Photo]:
    """One bin per photo, sample images reused cyclically, every 5th bin wrong."""
    samples = sample_photos()
    run = uuid.uuid4().hex[:8]
    photos = []
    for i in range(count):
        image, label = samples[i % len(samples)]
        wrong = i % WRONG_BIN_EVERY == WRONG_BIN_EVERY - 1
        bin_id = f"BENCH-{i:05d}"
        photos.append(
            Photo(
                bin_id=bin_id,
                key=f"bins/{bin_id}/cap-{run}-{i:05d}.jpg",
                image=image,
                label=label,
                expected_quantity=wrong_quantity(label) if wrong else label,
            )
        )
    return photos


def wrong_quantity(label: int) -> int:
    """A quantity whose probability slot differs from the label's (counts past K share one)."""
    return (min(label, MAX_COUNT) + 3) % (MAX_COUNT + 1)


def load_bins(resources: Resources, photos: list[Photo]) -> None:
    table = BinsTable(resources.names.bins_table, boto3.client("dynamodb"))
    table.put_many(Bin(photo.bin_id, photo.expected_quantity) for photo in photos)


def upload_photos(resources: Resources, photos: list[Photo]) -> list[Upload]:
    s3 = boto3.client("s3")
    uploads = []
    for photo in photos:
        response = s3.put_object(Bucket=resources.names.bucket, Key=photo.key, Body=photo.image)
        uploads.append(
            Upload(photo, response["ETag"].strip('"'), len(photo.image), _s3_event_time())
        )
    return uploads


def _s3_event_time() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def queue_endpoint_results(photos: list[Photo]) -> None:
    """One answer per photo, in the order the handler asks (moto pops them in order)."""
    results = [
        {"Body": json.dumps(model_answer(photo.label)), "ContentType": "application/json"}
        for photo in photos
    ]
    response = requests.post(MOTO_ENDPOINT_RESULTS, json={"results": results}, timeout=30)
    response.raise_for_status()


def model_answer(label: int) -> dict[str, Any]:
    """Mass ``LABEL_MASS`` on the label's slot, the rest spread evenly over the others."""
    slot = min(label, MAX_COUNT)
    rest = (1.0 - LABEL_MASS) / MAX_COUNT
    probabilities = [LABEL_MASS if k == slot else rest for k in range(MAX_COUNT + 1)]
    return {
        "count": slot,
        "probabilities": probabilities,
        "max_count": MAX_COUNT,
        "model_version": "bench",
    }


# --- events in Lambda's SQS format --------------------------------------------------------


def s3_notification(bucket: str, upload: Upload) -> dict[str, Any]:
    """An ``ObjectCreated:Put`` notification as S3 sends it (the key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": upload.event_time,
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:BENCHCAMERA"},
                "requestParameters": {"sourceIPAddress": "10.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": uuid.uuid4().hex,
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "photos-to-queue",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "BENCHOWNER"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(upload.photo.key, safe="/"),
                        "size": upload.size,
                        "eTag": upload.etag,
                        "sequencer": f"{time.time_ns():X}",
                    },
                },
            }
        ]
    }


def sqs_record(body: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    text = json.dumps(body)
    message_id = str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def build_events(resources: Resources, uploads: list[Upload], batch_size: int) -> list[dict]:
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{resources.names.queue}"
    records = [sqs_record(s3_notification(resources.names.bucket, u), queue_arn) for u in uploads]
    return [
        {"Records": records[start : start + batch_size]}
        for start in range(0, len(records), batch_size)
    ]


# --- timing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassResult:
    records: int
    seconds: float
    first_invocation_s: float
    failures: list[str]

    @property
    def per_second(self) -> float:
        return self.records / self.seconds

    @property
    def mean_ms(self) -> float:
        return self.seconds / self.records * 1000


@contextlib.contextmanager
def stdout_to_devnull(enabled: bool) -> Iterator[None]:
    """Send fd 1 to /dev/null: Powertools' logger holds the stdout it saw at import time,
    so redirecting ``sys.stdout`` alone would not silence it. Logging still happens (and
    costs what it costs in Lambda); only the lines are thrown away."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    with Path(os.devnull).open("w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def timed_pass(handler: ModuleType, events: list[dict], *, quiet: bool) -> PassResult:
    failures: list[str] = []
    first = 0.0
    with stdout_to_devnull(quiet):
        started = time.perf_counter()
        for event in events:
            response = handler.lambda_handler(event, LocalLambdaContext())
            failures += [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
            if not first:
                first = time.perf_counter() - started
        seconds = time.perf_counter() - started
    records = sum(len(event["Records"]) for event in events)
    return PassResult(records, seconds, first, failures)


# --- verification -------------------------------------------------------------------------


def scan_statuses(table_name: str, attribute: str) -> Counter[str]:
    """How many items of a table hold each value of ``attribute``."""
    paginator = boto3.client("dynamodb").get_paginator("scan")
    counts: Counter[str] = Counter()
    pages = paginator.paginate(
        TableName=table_name,
        ProjectionExpression="#a",
        ExpressionAttributeNames={"#a": attribute},
    )
    for page in pages:
        counts.update(item[attribute]["S"] for item in page["Items"])
    return counts


def verify_checks(resources: Resources, photos: list[Photo]) -> bool:
    statuses = scan_statuses(resources.names.checks_table, "status")
    expected = Counter(photo.expected_status for photo in photos)
    total = sum(statuses.values())
    print(f"  checks table: {total} records (expected {len(photos)})")
    print(f"  statuses:     {_counts(statuses)} (expected {_counts(expected)})")
    return total == len(photos) and statuses == expected


def verify_idempotency(resources: Resources, photos: list[Photo]) -> bool:
    statuses = scan_statuses(resources.names.idempotency_table, "status")
    print(f"  idempotency:  {_counts(statuses)} (expected COMPLETED {len(photos)})")
    return statuses == Counter({"COMPLETED": len(photos)})


def verify_alerts(resources: Resources, photos: list[Photo]) -> bool:
    """Alerts the topic received (moto's documented internal record of publishes)."""
    topic = sns_backends[ACCOUNT_ID][REGION].topics[resources.alerts_topic_arn]
    alerts = Counter(subject.split(":", 1)[0] for _, _, subject, _, _ in topic.sent_notifications)
    expected = Counter(p.expected_status for p in photos if p.expected_status != "MATCH")
    print(f"  alerts:       {_counts(alerts)} (expected {_counts(expected)})")
    return alerts == expected


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "none"


def print_pass(title: str, result: PassResult) -> None:
    print(f"  {title}")
    print(f"    records              {result.records}")
    print(f"    seconds              {result.seconds:.3f}")
    print(f"    records/s            {result.per_second:.1f}")
    print(f"    per record (mean)    {result.mean_ms:.2f} ms")
    print(f"    first invocation     {result.first_invocation_s * 1000:.1f} ms")
    if result.failures:
        print(f"    FAILED records       {len(result.failures)} (rerun with --show-logs)")


# --- 2 and 3. throughput ------------------------------------------------------------------


def import_handler() -> ModuleType:
    """Imported only now: the handler reads POWERTOOLS_* variables at import time."""
    return importlib.import_module("lambdas.checker.handler")


def report_throughput(photo_count: int, batch_size: int, *, quiet: bool) -> bool:
    with mock_aws():
        os.environ.update(BENCH_ENVIRONMENT)
        resources = provision(region=REGION)
        os.environ.update(resources.checker_environment())
        handler = import_handler()
        handler.get_app.cache_clear()
        try:
            return _throughput(handler, resources, photo_count, batch_size, quiet=quiet)
        finally:
            handler.get_app.cache_clear()


def _throughput(
    handler: ModuleType, resources: Resources, photo_count: int, batch_size: int, *, quiet: bool
) -> bool:
    photos = plan_photos(photo_count)
    load_bins(resources, photos)
    uploads = upload_photos(resources, photos)  # the bucket's own queue is left unread
    queue_endpoint_results(photos)
    events = build_events(resources, uploads, batch_size)

    print(
        f"\nHandler throughput: {photo_count} photos, batches of {batch_size}, "
        f"{len(events)} invocations"
    )
    print("  moto answers in-process (endpoint included), so this is the handler's own overhead:")
    print("  parsing, DynamoDB/S3/SNS calls against moto, idempotency, logs and metrics;")
    print("  not a real endpoint's latency. The first invocation builds the boto3 clients.")

    first = timed_pass(handler, events, quiet=quiet)
    print_pass("pass 1: first deliveries", first)
    ok = not first.failures
    ok &= verify_checks(resources, photos)
    ok &= verify_alerts(resources, photos)

    again = timed_pass(handler, events, quiet=quiet)
    print_pass("pass 2: the same events again (duplicate deliveries)", again)
    ok &= not again.failures
    ok &= verify_checks(resources, photos)
    ok &= verify_alerts(resources, photos)
    ok &= verify_idempotency(resources, photos)
    return ok


# --- entry point --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=500, help="photos to check (default 500)")
    parser.add_argument(
        "--batch-size", type=int, default=10, help="SQS records per invocation (default 10)"
    )
    parser.add_argument(
        "--import-runs", type=int, default=5, help="fresh interpreters per import (default 5)"
    )
    parser.add_argument(
        "--show-logs", action="store_true", help="let the handler's log lines through"
    )
    args = parser.parse_args(argv)
    for name in ("photos", "batch_size", "import_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def print_versions() -> None:
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("boto3", "aws-lambda-powertools", "moto")
    )
    print(f"Checker benchmark: Python {platform.python_version()}, {versions}\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_versions()
    report_imports(args.import_runs)
    ok = report_throughput(args.photos, args.batch_size, quiet=not args.show_logs)
    print("\nOK" if ok else "\nFAILED: see the figures above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
