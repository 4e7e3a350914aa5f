"""``bincheck data abid``: a data folder from the public Amazon Bin Image Dataset bucket.

Selects photos from the official "moderate" split (counts 0-5; its validation ids become
our test split) or by count range with a quota per count, downloads ``bin-images/<id>.jpg``
and ``metadata/<id>.json`` with unsigned requests, in parallel, resumably (files already
there are kept), and writes ``images/``, ``metadata/`` and ``labels.csv``
(``image_id,count,split``). Missing and corrupt objects are skipped and reported.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .data import Example, split

BUCKET = "aft-vbi-pds"


@dataclass
class BuildReport:
    selected: int = 0
    downloaded: int = 0
    kept: int = 0  # already in the folder from an earlier run
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def s3_client(endpoint_url: str | None = None) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    # The dataset is public: unsigned requests need no AWS account.
    config = Config(signature_version=UNSIGNED, retries={"mode": "standard", "max_attempts": 5})
    return boto3.client("s3", config=config, endpoint_url=endpoint_url, region_name="us-east-1")


def moderate_split(split_dir: Path) -> list[Example]:
    """The challenge's ids: its train file becomes train + val, its val file our test."""
    examples = []
    for name, role in (("train.csv", None), ("val.csv", "test")):
        with (split_dir / name).open(newline="") as rows:
            for row in csv.DictReader(rows):
                examples.append(Example(row["image_id"], int(row["count"]), role))
    return examples


def sample(
    examples: list[Example], per_count: int | None, limit: int | None, seed: int
) -> list[Example]:
    """At most ``per_count`` photos of each count, then at most ``limit`` in all."""
    rng = random.Random(seed)  # noqa: S311 - sampling photos, not secrets
    chosen = list(examples)
    if per_count:
        by_count: dict[int, list[Example]] = defaultdict(list)
        for example in chosen:
            by_count[example.count].append(example)
        chosen = [
            e for group in by_count.values() for e in rng.sample(group, min(per_count, len(group)))
        ]
    if limit and len(chosen) > limit:
        chosen = rng.sample(chosen, limit)
    return sorted(chosen, key=lambda e: e.image_id)


def scan_counts(
    client: Any, bucket: str, ids: Iterable[str], counts: range, per_count: int, workers: int
) -> list[Example]:
    """Read metadata files until each count in ``counts`` has ``per_count`` photos."""
    found: dict[int, list[Example]] = defaultdict(list)
    with ThreadPoolExecutor(workers) as pool:
        for image_id, count in pool.map(lambda i: (i, _metadata_count(client, bucket, i)), ids):
            if count in counts and len(found[count]) < per_count:
                found[count].append(Example(image_id, count))
            if all(len(found[c]) >= per_count for c in counts):
                break
    return sorted((e for group in found.values() for e in group), key=lambda e: e.image_id)


def listed_ids(client: Any, bucket: str) -> Iterable[str]:
    """Image ids in the order S3 lists ``metadata/``, lazily, page by page."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="metadata/"):
        for item in page.get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1]
            if name.endswith(".json"):
                yield name.removesuffix(".json")


def _metadata_count(client: Any, bucket: str, image_id: str) -> int | None:
    try:
        body = client.get_object(Bucket=bucket, Key=f"metadata/{image_id}.json")["Body"].read()
        return int(json.loads(body)["EXPECTED_QUANTITY"])
    except Exception:  # a photo without usable metadata is just not a candidate
        return None


def build(
    client: Any,
    out: Path,
    examples: list[Example],
    *,
    bucket: str = BUCKET,
    workers: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> BuildReport:
    from botocore.exceptions import ClientError
    from tqdm import tqdm

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "metadata").mkdir(exist_ok=True)
    report = BuildReport(selected=len(examples))

    def fetch(example: Example) -> tuple[Example, str]:
        image = out / "images" / f"{example.image_id}.jpg"
        if image.is_file() and _is_jpeg(image.read_bytes()):
            return example, "kept"
        try:
            data = client.get_object(Bucket=bucket, Key=f"bin-images/{example.image_id}.jpg")[
                "Body"
            ].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
                return example, "missing"
            raise
        if not _is_jpeg(data):
            return example, "corrupt"
        _write_atomically(image, data)
        try:
            metadata = client.get_object(Bucket=bucket, Key=f"metadata/{example.image_id}.json")[
                "Body"
            ].read()
            _write_atomically(out / "metadata" / f"{example.image_id}.json", metadata)
        except ClientError:
            pass  # metadata is optional in a data folder
        return example, "downloaded"

    good: list[Example] = []
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(fetch, examples)
        for example, outcome in tqdm(
            results, total=len(examples), desc="abid", unit="photo", disable=not progress
        ):
            if outcome in {"missing", "corrupt"}:
                getattr(report, outcome).append(example.image_id)
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            good.append(example)

    assigned = assign_splits(good, seed)
    with (out / "labels.csv").open("w", newline="") as labels:
        writer = csv.writer(labels)
        writer.writerow(["image_id", "count", "split"])
        for example in good:
            writer.writerow([example.image_id, example.count, assigned[example.image_id]])
    (out / "build_report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report


def assign_splits(examples: list[Example], seed: int) -> dict[str, str]:
    """Split names by id. With the official moderate split, its validation ids are the
    test split and its training ids are divided into train and val; otherwise 70/15/15."""
    if any(e.split == "test" for e in examples):
        rest = [Example(e.image_id, e.count) for e in examples if e.split != "test"]
        parts = split(rest, fractions=(0.85, 0.15, 0.0), seed=seed)
        parts["test"] = [e for e in examples if e.split == "test"]
    else:
        parts = split([Example(e.image_id, e.count) for e in examples], seed=seed)
    return {e.image_id: name for name, group in parts.items() for e in group}


def count_summary(folder: Path) -> Counter[str]:
    with (folder / "labels.csv").open(newline="") as rows:
        return Counter(row["split"] for row in csv.DictReader(rows))


def _is_jpeg(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return False
            image.load()  # decodes: catches truncated files
        return True
    except Exception:  # any failure to decode means corrupt
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)
