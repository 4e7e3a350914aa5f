"""Every tunable of the deployment, read once from ``cdk.json`` context (key ``bincheck``).

Override any field with ``cdk deploy -c bincheck='{"alert_email": "ops@example.com"}'``
or in ``cdk.json``; unknown keys are refused so a typo cannot pass silently.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.decision import DEFAULT_ALERT_STATUSES, Thresholds
from contract.names import ENDPOINT_NAME
from contract.review import DEFAULT_REVIEW_STATUSES

if TYPE_CHECKING:  # the local stack reads this configuration without loading the CDK
    from constructs import Node

REPO = Path(__file__).resolve().parents[1]
# What CloudWatch Logs accepts as a retention (days), and SageMaker as an endpoint name.
# fmt: off
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)
# fmt: on
ENDPOINT_NAME_PATTERN = re.compile(r"[a-z0-9](-*[a-z0-9])*")


@dataclass(frozen=True)
class BinCheckConfig:
    # Photos bucket
    photo_infrequent_access_days: int = 30
    photo_expiration_days: int = 365
    # Queue and checker function (see the README: timeout above the per-record budget)
    batch_size: int = 10
    max_batching_window_s: int = 1
    max_concurrency: int = 10  # concurrent function instances: sized to the endpoint
    function_timeout_s: int = 60
    function_memory_mb: int = 512
    max_receive_count: int = 5
    python_runtime: str = "3.13"
    powertools_layer_version: int = 27
    # Decision rule and alerts
    match_threshold: float = Thresholds.match
    mismatch_threshold: float = Thresholds.mismatch
    alert_statuses: tuple[str, ...] = tuple(sorted(str(s) for s in DEFAULT_ALERT_STATUSES))
    endpoint_input: str = "s3_uri"
    alert_email: str | None = None
    ops_email: str | None = None
    # Endpoint
    endpoint_name: str = ENDPOINT_NAME
    model_artifact: str = "model/default/model.tar.gz"
    pytorch_version: str = "2.6.0"
    python_version: str = "py312"
    instance_type: str = "ml.g4dn.xlarge"
    min_instances: int = 1
    max_instances: int = 4
    invocations_per_instance: int = 3000  # per minute, auto scaling's target: an estimate (README)
    data_capture_percent: int = 0  # 0 turns data capture off
    latency_alarm_ms: int = 500
    # SageMaker network isolation for the endpoint's models (the CDK app's and every
    # promoted one): the container gets no network at all, so it cannot read photos from S3
    # and the checker must send the bytes (endpoint_input "bytes"), and the artifact must
    # start without PyPI.
    endpoint_network_isolation: bool = False
    # Monitoring
    queue_age_alarm_s: int = 300
    metrics_namespace: str = "BinChecker"
    service_name: str = "bin-checker"
    retain_data: bool = True
    # How long the log groups the stack declares keep their events: the functions', the
    # endpoint's and the state machine's (one of CloudWatch Logs' retentions, in days).
    log_retention_days: int = 90
    # Training pipeline: run request defaults (lambdas/retraining/request.py), an optional
    # EventBridge schedule such as "rate(7 days)" (off by default; it needs "data" in the
    # defaults), the limit of one execution, and how long a new model's alarms are watched.
    pipeline_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    pipeline_schedule: str | None = None
    pipeline_timeout_h: int = 72
    deployment_bake_s: int = 600
    # SageMaker Debugger's profiler and ProfilerReport rule on the final training job. Off by
    # default: AWS closed Debugger to new customers on 2026-07-30, so an account that never
    # used it may refuse or ignore the request. Turn it on in accounts that already use it.
    training_profiler: bool = False
    # Human review (docs/review.md): which checks wait for a person; whether a settled review
    # sets the bin's expected quantity (off: the warehouse system owns the bins table); the
    # photo link's lifetime; the review API's throttling; the backlog alarms' thresholds.
    review_statuses: tuple[str, ...] = tuple(sorted(str(s) for s in DEFAULT_REVIEW_STATUSES))
    review_updates_bins: bool = False
    review_photo_url_ttl_s: int = 300
    review_function_timeout_s: int = 15
    review_refresh_token_h: int = 12  # how long a reviewer stays signed in (a shift)
    review_api_rate_limit: int = 20  # requests per second, steady
    review_api_burst_limit: int = 40
    review_backlog_alarm: int = 200  # pending reviews
    review_oldest_alarm_h: int = 24  # hours the oldest pending check has waited

    def __post_init__(self) -> None:
        if not 0 <= self.mismatch_threshold < self.match_threshold <= 1:
            raise ValueError("need 0 <= mismatch_threshold < match_threshold <= 1")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch_size must be 1..10000")
        if self.max_concurrency < 2:
            raise ValueError("max_concurrency must be >= 2 (an SQS event source limit)")
        if not 0 <= self.data_capture_percent <= 100:
            raise ValueError("data_capture_percent must be 0..100")
        if self.endpoint_name != self.endpoint_name.lower():
            raise ValueError("endpoint_name must be lower case (SageMaker ARNs are)")
        name = self.endpoint_name
        if len(name) > 63 or not ENDPOINT_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                "endpoint_name must be 1-63 letters, digits and hyphens, starting and ending "
                f"with a letter or digit (SageMaker's rule), got {name!r}"
            )
        if self.endpoint_network_isolation and self.endpoint_input != "bytes":
            raise ValueError(
                'endpoint_network_isolation needs endpoint_input "bytes": an isolated model '
                "cannot read photos from S3"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"log_retention_days must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} "
                f"(CloudWatch Logs' retentions), got {self.log_retention_days}"
            )
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances must not exceed max_instances")
        if not 1 <= self.review_photo_url_ttl_s <= 3600:
            raise ValueError("review_photo_url_ttl_s must be 1..3600 (lambdas/review/settings.py)")
        if self.review_backlog_alarm < 1 or self.review_oldest_alarm_h < 1:
            raise ValueError("review_backlog_alarm and review_oldest_alarm_h must be >= 1")

    @property
    def queue_visibility_timeout_s(self) -> int:
        # AWS's advice for SQS event sources: six times the function timeout.
        return 6 * self.function_timeout_s

    @property
    def model_artifact_path(self) -> Path:
        path = Path(self.model_artifact)
        return path if path.is_absolute() else REPO / path

    def checker_environment(self) -> dict[str, str]:
        """The checker function's tunables, as its environment variables (AWS and local)."""
        return {
            "POWERTOOLS_SERVICE_NAME": self.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
            "MATCH_THRESHOLD": str(self.match_threshold),
            "MISMATCH_THRESHOLD": str(self.mismatch_threshold),
            "ALERT_STATUSES": ",".join(self.alert_statuses),
            "ENDPOINT_INPUT": self.endpoint_input,
            "REVIEW_STATUSES": ",".join(self.review_statuses),
        }

    def review_environment(self) -> dict[str, str]:
        """The review function's tunables, as its environment variables."""
        return {
            "POWERTOOLS_SERVICE_NAME": f"{self.service_name}-review",
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
            "UPDATE_BINS": "true" if self.review_updates_bins else "false",
            "PHOTO_URL_TTL_S": str(self.review_photo_url_ttl_s),
        }

    @classmethod
    def from_context(cls, node: Node) -> BinCheckConfig:
        return cls.from_values(node.try_get_context("bincheck") or {})

    @classmethod
    def from_cdk_json(cls, path: Path = REPO / "cdk.json") -> BinCheckConfig:
        """What ``cdk deploy`` would use, without ``-c`` overrides (the local stack's view)."""
        if not path.is_file():
            return cls()
        context = json.loads(path.read_text()).get("context", {})
        return cls.from_values(context.get("bincheck") or {})

    @classmethod
    def from_values(cls, raw: str | dict[str, Any]) -> BinCheckConfig:
        values: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown bincheck settings in cdk context: {unknown}")
        for name in ("alert_statuses", "review_statuses"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)
