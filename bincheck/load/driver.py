"""The calls: the checker's endpoint adapter and client configuration, from N threads.

Every call goes through ``CountingEndpoint.count``, the method the checker calls, on a
client made by the checker's ``client_config``; the latency of a call is the one that
method returns (the checker's ``EndpointLatency`` metric). Only the connection pool is
widened: the checker calls from one thread, here ``concurrency`` threads share a client.
"""

from __future__ import annotations

import csv
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from contract.decision import InvalidPrediction
from lambdas.checker.adapters.aws import client, client_config
from lambdas.checker.adapters.endpoint import CountingEndpoint, ImageRejected
from lambdas.checker.settings import Settings

Target = tuple[str, str]  # (bucket, key), as the checker names a photo


def photo_ids(folder: Path, limit: int) -> list[str]:
    """The first ``limit`` ids of ``labels.csv`` whose ``images/<id>.jpg`` exists."""
    labels = folder / "labels.csv"
    if not folder.is_dir():
        raise ValueError(f"no data folder at {folder}")
    if not labels.is_file():
        raise ValueError(f"{folder} has no labels.csv (a data folder: images/ + labels.csv)")
    ids: list[str] = []
    with labels.open(newline="") as rows:
        reader = csv.DictReader(rows)
        if "image_id" not in (reader.fieldnames or []):
            raise ValueError(f"{labels} has no image_id column")
        for row in reader:
            if len(ids) == limit:
                break
            if (folder / "images" / f"{row['image_id']}.jpg").is_file():
                ids.append(row["image_id"])
    if not ids:
        raise ValueError(f"{folder} has no photos: no id in labels.csv has its images/<id>.jpg")
    return ids


class LocalPhotos:
    """What ``CountingEndpoint`` reads in bytes mode, from a data folder instead of the
    photos bucket; held in memory so that no call's time includes a disk read."""

    def __init__(self, folder: Path, image_ids: Sequence[str]) -> None:
        self.bucket = str(folder)
        self._bodies = {
            f"images/{i}.jpg": (folder / "images" / f"{i}.jpg").read_bytes() for i in image_ids
        }

    @property
    def targets(self) -> list[Target]:
        return [(self.bucket, key) for key in self._bodies]

    def read(self, bucket: str, key: str) -> bytes:
        return self._bodies[key]


def parse_s3_prefix(prefix: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix/")``."""
    bucket, _, path = prefix.removeprefix("s3://").partition("/")
    if not prefix.startswith("s3://") or not bucket:
        raise ValueError(f"--s3-prefix must look like s3://BUCKET/PREFIX/, got {prefix!r}")
    return bucket, path if not path or path.endswith("/") else f"{path}/"


def upload(s3: Any, prefix: str, photos: LocalPhotos) -> list[Target]:
    """Puts each photo under ``prefix`` once; the targets name the uploaded objects."""
    from tqdm import tqdm

    bucket, path = parse_s3_prefix(prefix)
    targets = []
    for local_bucket, key in tqdm(photos.targets, desc="upload", unit="photo"):
        name = f"{path}{key.removeprefix('images/')}"
        try:
            s3.put_object(
                Bucket=bucket,
                Key=name,
                Body=photos.read(local_bucket, key),
                ContentType="image/jpeg",
            )
        except ClientError as error:
            raise ValueError(f"could not upload to s3://{bucket}/{name}: {error}") from error
        targets.append((bucket, name))
    return targets


def endpoint_client(*, url: str | None, attempts: int, pool: int) -> Any:
    """A SageMaker Runtime client as the checker makes it (its timeouts, ``attempts``
    attempts per call); ``url`` points it at a local runtime such as ``bincheck serve``."""
    config = client_config(
        read_timeout_s=Settings.endpoint_read_timeout_s,
        connect_timeout_s=Settings.connect_timeout_s,
        max_attempts=attempts,
    ).merge(Config(max_pool_connections=max(pool, 10)))
    return client("sagemaker-runtime", config, **(_local_runtime(url) if url else {}))


def _local_runtime(url: str) -> dict[str, str]:
    """A local runtime checks no signature: any region, and placeholder credentials when
    none are configured, so that ``--url`` works on a machine without an AWS account."""
    import boto3

    session = boto3.Session()
    arguments = {"endpoint_url": url, "region_name": session.region_name or "us-east-1"}
    if session.get_credentials() is None:
        arguments |= {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return arguments


def error_kind(error: BaseException) -> str | None:
    """How a failed call is counted; ``None`` for a failure that is not the endpoint's
    (no credentials, a bug): that one stops the run."""
    if isinstance(error, ImageRejected):  # the adapter's name for a ModelError with a 4xx
        return "ModelError 4xx"
    if isinstance(error, InvalidPrediction):
        return "InvalidPrediction"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code") or "ClientError"
        original = error.response.get("OriginalStatusCode")
        return f"{code} {original}" if code == "ModelError" and original else code
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return "timeout"
    if isinstance(error, HTTPClientError | BotocoreConnectionError):
        return "connection"
    return None


@dataclass
class StepCalls:
    """What one step's calls gave: latencies of the successful ones, the rest by kind."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())


class _Step:
    def __init__(
        self, endpoint: CountingEndpoint, targets: Sequence[Target], *, max_calls: int
    ) -> None:
        self.endpoint = endpoint
        self.targets = targets
        self.max_calls = max_calls
        self.deadline = float("inf")
        self.claimed = 0
        self.stopped = False
        self.lock = threading.Lock()
        self.result = StepCalls()

    def next_call(self) -> int | None:
        with self.lock:
            if self.stopped or self.claimed >= self.max_calls or time.monotonic() >= self.deadline:
                return None
            self.claimed += 1
            return self.claimed - 1

    def work(self) -> None:
        while (index := self.next_call()) is not None:
            bucket, key = self.targets[index % len(self.targets)]
            try:
                _, latency_ms = self.endpoint.count(
                    bucket=bucket, key=key, content_type="image/jpeg"
                )
            except Exception as error:
                kind = error_kind(error)
                if kind is None:
                    self.stopped = True
                    raise
                with self.lock:
                    self.result.errors[kind] += 1
            else:
                with self.lock:
                    self.result.latencies_ms.append(latency_ms)


def run_step(
    endpoint: CountingEndpoint,
    targets: Sequence[Target],
    *,
    concurrency: int,
    duration_s: float,
    max_calls: int,
) -> StepCalls:
    """``concurrency`` threads call one after another until ``duration_s`` has passed or
    ``max_calls`` calls were made; calls in flight then finish. Photos are taken in turn."""
    from tqdm import tqdm

    step = _Step(endpoint, targets, max_calls=max_calls)
    bar = tqdm(
        total=duration_s,
        desc=f"concurrency {concurrency}",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s{postfix}",
    )
    started = time.monotonic()
    step.deadline = started + duration_s
    with bar, ThreadPoolExecutor(concurrency, thread_name_prefix="bincheck-load") as pool:
        workers = [pool.submit(step.work) for _ in range(concurrency)]
        try:
            pending = set(workers)
            while pending:
                _, pending = wait(pending, timeout=0.25)
                bar.n = min(time.monotonic() - started, duration_s)
                bar.set_postfix_str(f"{step.claimed} calls, {len(step.result.latencies_ms)} ok")
        except BaseException:  # Ctrl-C: no new calls; those in flight finish
            step.stopped = True
            raise
    step.result.wall_s = time.monotonic() - started
    for worker in workers:
        worker.result()  # a failure that is not the endpoint's
    return step.result
