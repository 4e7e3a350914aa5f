"""Shared botocore client configuration: standard retries, bounded attempts and timeouts."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def client_config(*, read_timeout_s: float, connect_timeout_s: float, max_attempts: int) -> Config:
    # max_attempts counts the first call too. Standard mode retries throttling, 5xx and
    # transient network errors with jittered backoff; after max_attempts the error
    # surfaces and SQS redelivers the message.
    # The read timeout must stay well below the function's timeout so a hung call
    # fails the record instead of the whole batch.
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        read_timeout=read_timeout_s,
        connect_timeout=connect_timeout_s,
        tcp_keepalive=True,
    )


def client(service: str, config: Config, **kwargs: Any) -> Any:
    return boto3.client(service, config=config, **kwargs)
