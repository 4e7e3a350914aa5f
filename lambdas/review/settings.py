"""The review function's configuration, read from the environment and validated in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
MAX_PHOTO_URL_TTL_S = 3600
POOL_ID = re.compile(r"[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+")
CLIENT_ID = re.compile(r"[0-9a-z]{1,128}")
# An origin, optionally with a path ("/" only) and a leading "*." host wildcard, as CSP takes.
ORIGIN = re.compile(r"https?://(\*\.)?[0-9A-Za-z.-]+(:\d+)?/?")


class ConfigurationError(RuntimeError):
    pass


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
        """Collect every problem at once so a misconfigured function says all that is wrong."""
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is required")
            return value

        def number(name: str, default: Any, most: float | None = None) -> Any:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = type(default)(text)
            except ValueError:
                noun = "an integer" if isinstance(default, int) else "a number"
                problems.append(f"{name} must be {noun}, got {text!r}")
                return default
            if value <= 0 or (most is not None and value > most):
                limit = "" if most is None else f" and <= {most}"
                problems.append(f"{name} must be > 0{limit}, got {text!r}")
            return value

        update_bins = env.get("UPDATE_BINS", "false").strip().lower()
        if update_bins not in TRUE + FALSE:
            problems.append(f"UPDATE_BINS must be true or false, got {update_bins!r}")
        settings = cls(
            checks_table=required("CHECKS_TABLE"),
            bins_table=required("BINS_TABLE"),
            alerts_topic_arn=required("ALERTS_TOPIC_ARN"),
            update_bins=update_bins in TRUE,
            photo_url_ttl_s=number("PHOTO_URL_TTL_S", cls.photo_url_ttl_s, MAX_PHOTO_URL_TTL_S),
            aws_read_timeout_s=number("AWS_READ_TIMEOUT_S", cls.aws_read_timeout_s),
            connect_timeout_s=number("CONNECT_TIMEOUT_S", cls.connect_timeout_s),
            max_attempts=number("AWS_MAX_ATTEMPTS", cls.max_attempts),
        )
        if problems:
            raise ConfigurationError("review configuration: " + "; ".join(problems))
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
        problems: list[str] = []
        pool_id = env.get("USER_POOL_ID", "").strip()
        client_id = env.get("USER_POOL_CLIENT_ID", "").strip()
        if not POOL_ID.fullmatch(pool_id):
            problems.append(
                f"USER_POOL_ID must be a user pool id (us-east-1_AbC123), got {pool_id!r}"
            )
        if not CLIENT_ID.fullmatch(client_id):
            problems.append(f"USER_POOL_CLIENT_ID must be an app client id, got {client_id!r}")
        region = pool_id.partition("_")[0]
        endpoint = env.get("COGNITO_ENDPOINT_URL", "").strip() or (
            f"https://cognito-idp.{region}.amazonaws.com/"
        )
        photos = env.get("PHOTOS_ORIGIN", "").strip() or (
            f"https://*.s3.amazonaws.com https://*.s3.{region}.amazonaws.com"
        )
        for name, value in (("COGNITO_ENDPOINT_URL", endpoint), ("PHOTOS_ORIGIN", photos)):
            if not all(ORIGIN.fullmatch(origin) for origin in value.split()):
                problems.append(f"{name} must be http(s) origins, got {value!r}")
        if problems:
            raise ConfigurationError("review page configuration: " + "; ".join(problems))
        return cls(pool_id, client_id, endpoint, photos)
