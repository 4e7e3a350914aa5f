"""The review function's configuration, read from the environment and validated in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from contract.environment import ConfigurationError, Environment

__all__ = ["ConfigurationError", "PageSettings", "Settings"]

MAX_PHOTO_URL_TTL_S = 3600
POOL_ID = re.compile(r"[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+")
CLIENT_ID = re.compile(r"[0-9a-z]{1,128}")
# An origin, optionally with a path ("/" only) and a leading "*." host wildcard, as CSP takes.
ORIGIN = re.compile(r"https?://(\*\.)?[0-9A-Za-z.-]+(:\d+)?/?")


@dataclass(frozen=True)
class Settings:
    checks_table: str
    bins_table: str
    alerts_topic_arn: str
    # Off by default: the warehouse system owns the bins table.
    update_bins: bool = False
    photo_url_ttl_s: int = 300
    aws_read_timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    max_attempts: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        read = Environment(env)
        settings = cls(
            checks_table=read.required("CHECKS_TABLE"),
            bins_table=read.required("BINS_TABLE"),
            alerts_topic_arn=read.required("ALERTS_TOPIC_ARN"),
            update_bins=read.flag("UPDATE_BINS", cls.update_bins),
            photo_url_ttl_s=read.number(
                "PHOTO_URL_TTL_S", cls.photo_url_ttl_s, most=MAX_PHOTO_URL_TTL_S
            ),
            aws_read_timeout_s=read.number("AWS_READ_TIMEOUT_S", cls.aws_read_timeout_s),
            connect_timeout_s=read.number("CONNECT_TIMEOUT_S", cls.connect_timeout_s),
            max_attempts=read.number("AWS_MAX_ATTEMPTS", cls.max_attempts),
        )
        read.check("review")
        return settings


@dataclass(frozen=True)
class PageSettings:
    """What the review page (``GET /``) needs: where to sign in, and where photos come from.

    ``USER_POOL_ID`` and ``USER_POOL_CLIENT_ID`` name the reviewers' pool and its app client
    (no secret; USER_PASSWORD_AUTH allowed); the region is the pool id's prefix.
    ``COGNITO_ENDPOINT_URL`` (optional) replaces Cognito's regional endpoint (the local
    stack's emulation); ``PHOTOS_ORIGIN`` (optional) the origins photo links point at.
    """

    user_pool_id: str
    client_id: str
    cognito_endpoint: str
    photos_origin: str

    @property
    def region(self) -> str:
        return self.user_pool_id.partition("_")[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> PageSettings:
        read = Environment(env)
        pool_id = read.text("USER_POOL_ID")
        client_id = read.text("USER_POOL_CLIENT_ID")
        if not POOL_ID.fullmatch(pool_id):
            read.problems.append(
                f"USER_POOL_ID must be a user pool id (us-east-1_AbC123), got {pool_id!r}"
            )
        if not CLIENT_ID.fullmatch(client_id):
            read.problems.append(f"USER_POOL_CLIENT_ID must be an app client id, got {client_id!r}")
        region = pool_id.partition("_")[0]
        endpoint = read.text("COGNITO_ENDPOINT_URL", f"https://cognito-idp.{region}.amazonaws.com/")
        photos = read.text(
            "PHOTOS_ORIGIN", f"https://*.s3.amazonaws.com https://*.s3.{region}.amazonaws.com"
        )
        for name, value in (("COGNITO_ENDPOINT_URL", endpoint), ("PHOTOS_ORIGIN", photos)):
            if not all(ORIGIN.fullmatch(origin) for origin in value.split()):
                read.problems.append(f"{name} must be http(s) origins, got {value!r}")
        read.check("review page")
        return cls(pool_id, client_id, endpoint, photos)
