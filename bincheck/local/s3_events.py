"""The message S3 puts on a queue for an upload, to inject the duplicates S3 may deliver.

S3 event notifications are delivered at least once; a second copy of a message carries the
same bucket, key and eTag, which is what the checker's idempotency keys on.
"""

from __future__ import annotations

import json
from urllib.parse import quote_plus

from contract.times import format_timestamp, utc_now


def object_created(bucket: str, key: str, *, etag: str, size: int, region: str) -> str:
    """The body of an ``s3:ObjectCreated:Put`` notification, as S3 writes it."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": format_timestamp(utc_now()),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "photos",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag.strip('"')},
        },
    }
    return json.dumps({"Records": [record]})
