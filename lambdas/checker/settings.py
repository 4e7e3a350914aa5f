"""The checker's configuration, read from the environment and validated in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.decision import DEFAULT_ALERT_STATUSES, Status, Thresholds
from contract.environment import ConfigurationError, Environment
from contract.review import DEFAULT_REVIEW_STATUSES, REVIEWABLE_STATUSES

__all__ = ["INPUT_MODES", "ConfigurationError", "Settings"]

INPUT_MODES = ("s3_uri", "bytes")


@dataclass(frozen=True)
class Settings:
    bins_table: str
    checks_table: str
    idempotency_table: str
    alerts_topic_arn: str
    endpoint_name: str
    endpoint_input: str = "s3_uri"
    thresholds: Thresholds = field(default_factory=Thresholds)
    alert_statuses: frozenset[Status] = DEFAULT_ALERT_STATUSES
    review_statuses: frozenset[Status] = DEFAULT_REVIEW_STATUSES
    max_image_bytes: int = 5 * 1024 * 1024
    endpoint_read_timeout_s: float = 10.0
    aws_read_timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    max_attempts: int = 3
    idempotency_ttl_s: int = 24 * 3600

    @property
    def record_time_budget_s(self) -> float:
        """What one check may take at worst: every endpoint attempt timing out, plus the
        table, bucket and topic calls. The function's timeout must exceed it."""
        endpoint = self.max_attempts * (self.connect_timeout_s + self.endpoint_read_timeout_s)
        return endpoint + 2 * self.aws_read_timeout_s

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Collect every problem at once so a misconfigured function says all that is wrong."""
        read = Environment(env)
        settings: dict[str, Any] = dict(
            bins_table=read.required("BINS_TABLE"),
            checks_table=read.required("CHECKS_TABLE"),
            idempotency_table=read.required("IDEMPOTENCY_TABLE"),
            alerts_topic_arn=read.required("ALERTS_TOPIC_ARN"),
            endpoint_name=read.required("ENDPOINT_NAME"),
            endpoint_input=read.text("ENDPOINT_INPUT", "s3_uri"),
            max_image_bytes=read.number("MAX_IMAGE_BYTES", cls.max_image_bytes),
            endpoint_read_timeout_s=read.number(
                "ENDPOINT_READ_TIMEOUT_S", cls.endpoint_read_timeout_s
            ),
            aws_read_timeout_s=read.number("AWS_READ_TIMEOUT_S", cls.aws_read_timeout_s),
            connect_timeout_s=read.number("CONNECT_TIMEOUT_S", cls.connect_timeout_s),
            max_attempts=read.number("AWS_MAX_ATTEMPTS", cls.max_attempts),
            idempotency_ttl_s=read.number("IDEMPOTENCY_TTL_S", cls.idempotency_ttl_s),
        )
        if settings["endpoint_input"] not in INPUT_MODES:
            read.problems.append(
                f"ENDPOINT_INPUT must be one of {INPUT_MODES}, got {settings['endpoint_input']!r}"
            )
        try:
            settings["thresholds"] = Thresholds(
                match=read.number("MATCH_THRESHOLD", Thresholds.match, positive=False),
                mismatch=read.number("MISMATCH_THRESHOLD", Thresholds.mismatch, positive=False),
            )
        except ValueError as error:
            read.problems.append(str(error))

        def statuses(name: str, allowed: frozenset[Status], why: str = "") -> None:
            text = env.get(name)
            if text is None:
                return
            names = {part.strip() for part in text.split(",") if part.strip()}
            unknown = names - set(Status)
            if unknown:
                read.problems.append(f"{name} has unknown statuses {sorted(unknown)}")
            refused = sorted(names - unknown - allowed)
            if refused:
                read.problems.append(f"{name} may not name {refused}{why}")
            settings[name.lower()] = frozenset(Status(n) for n in names - unknown)

        statuses("ALERT_STATUSES", frozenset(Status))
        statuses(
            "REVIEW_STATUSES",
            REVIEWABLE_STATUSES,
            ": a review settles a count against an expected quantity, so only "
            f"{sorted(REVIEWABLE_STATUSES)} can be reviewed",
        )
        read.check("checker")
        return cls(**settings)
