"""Reviewed photos as a data folder: the settled checks' photos and the counts people gave
them, for the next training run (``train.py --extra-train DIR``, or the retraining
pipeline's ``extra_data``).

The folder is what every data-facing command reads: ``images/<id>.jpg`` and ``labels.csv``
(``image_id,count,split``, ``split=train``: a reviewed photo is trained on, never used to
select or judge a model), plus columns naming where each label came from. Ids are stable
(the bin and a hash of the check), so exporting again rewrites the same files. A photo keeps
its bytes (a PNG too: training decodes by content).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from contract.check import CheckRecord
from contract.decision import Status
from contract.review import ReviewState

COLUMNS = (
    "image_id",
    "count",
    "split",
    "bin_id",
    "check_id",
    "resolution",
    "reviewed_at",
    "model_version",
    "predicted_count",
)


@dataclass(frozen=True)
class Exported:
    rows: int
    missing: list[str]  # photos no longer in the bucket (expired, deleted)


def settled_checks(
    checks: Any, statuses: Iterable[Status], since: str | None = None
) -> Iterator[CheckRecord]:
    """Reviewed checks of ``statuses`` (by the status index), reviewed at or after ``since``.

    ``checks`` is the checker's ``ChecksTable``: checks wait for review only in the review
    statuses, so those are the statuses to read.
    """
    for status in sorted(set(statuses)):
        for record in checks.query(status=status):
            if record.review_state is not ReviewState.REVIEWED:
                continue
            if since is None or (record.reviewed_at or "") >= since:
                yield record


def image_id(record: CheckRecord) -> str:
    digest = hashlib.sha256(record.check_id.encode()).hexdigest()[:16]
    return f"{record.bin_id}_{digest}"


def export(records: Iterable[CheckRecord], out: str, s3: Any) -> Exported:
    """Write the data folder to a local folder or ``s3://bucket/prefix``."""
    target = _S3Folder(out, s3) if out.startswith("s3://") else _LocalFolder(Path(out), s3)
    rows, missing = [], []
    for record in records:
        name = image_id(record)
        bucket, _, key = record.image_uri.removeprefix("s3://").partition("/")
        try:
            target.photo(name, bucket, key)
        except ClientError as error:
            if error.response["Error"]["Code"] not in {"404", "NoSuchKey", "NotFound"}:
                raise
            missing.append(record.image_uri)
            continue
        rows.append(
            {
                "image_id": name,
                "count": record.reviewed_count,
                "split": "train",
                "bin_id": record.bin_id,
                "check_id": record.check_id,
                "resolution": record.resolution,
                "reviewed_at": record.reviewed_at,
                "model_version": record.model_version or "",
                "predicted_count": "" if record.predicted_count is None else record.predicted_count,
            }
        )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: str(row["image_id"])))
    target.labels(text.getvalue())  # last: a folder with labels.csv is complete
    return Exported(len(rows), missing)


class _LocalFolder:
    def __init__(self, root: Path, s3: Any) -> None:
        self.root = root
        self.s3 = s3
        (root / "images").mkdir(parents=True, exist_ok=True)

    def photo(self, name: str, bucket: str, key: str) -> None:
        data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        _write_atomically(self.root / "images" / f"{name}.jpg", data)

    def labels(self, text: str) -> None:
        _write_atomically(self.root / "labels.csv", text.encode())


class _S3Folder:
    def __init__(self, uri: str, s3: Any) -> None:
        self.bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not self.bucket:
            raise ValueError(f"--out {uri!r} names no bucket: s3://BUCKET/PREFIX")
        self.prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        self.s3 = s3

    def photo(self, name: str, bucket: str, key: str) -> None:
        # Copied within S3: the photo never passes through this machine.
        self.s3.copy_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}images/{name}.jpg",
            CopySource={"Bucket": bucket, "Key": key},
        )

    def labels(self, text: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}labels.csv",
            Body=text.encode(),
            ContentType="text/csv",
        )


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
