"""The photos bucket: a short-lived link to a check's photo, for the reviewer's browser."""

from __future__ import annotations

from typing import Any


class PhotoLinks:
    def __init__(self, client: Any) -> None:
        self.client = client

    def url(self, image_uri: str, expires_s: int) -> str:
        """A presigned GET of ``s3://bucket/key``, valid for ``expires_s`` seconds."""
        bucket, _, key = image_uri.removeprefix("s3://").partition("/")
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
