"""The photos bucket: what the checker needs to know about an uploaded photo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

CAPTURED_AT_METADATA = "captured-at"  # sent as the x-amz-meta-captured-at header


@dataclass(frozen=True)
class StoredPhoto:
    size: int
    captured_at: str | None


class PhotoStore:
    def __init__(self, client: Any) -> None:
        self.client = client

    def describe(self, bucket: str, key: str) -> StoredPhoto | None:
        """Size and capture-time metadata; ``None`` when the object no longer exists."""
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return StoredPhoto(head["ContentLength"], head["Metadata"].get(CAPTURED_AT_METADATA))

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
