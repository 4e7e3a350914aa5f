"""botocore client configuration: standard retries, bounded attempts and timeouts."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def client(
    service: str, *, read_timeout_s: float, connect_timeout_s: float, max_attempts: int
) -> Any:
    # An API answer waits on these calls: fail within a few seconds rather than hold the
    # caller until API Gateway's own 30 s limit.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        read_timeout=read_timeout_s,
        connect_timeout=connect_timeout_s,
        tcp_keepalive=True,
        # Presigned photo URLs: SigV4, the only signature newer regions and KMS keys accept.
        signature_version="s3v4" if service == "s3" else None,
    )
    return boto3.client(service, config=config)
