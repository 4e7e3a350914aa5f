"""What a million checks cost, and what a retraining run cost: arithmetic only.

Prices come from a dated table (``bincheck/prices.json``, list prices written by hand);
the requests one check makes come from the code that makes them (:class:`CheckRequests`,
each count with its source in docs/cost.md). No AWS, no files: the command reads its
inputs and hands them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CHECKS = 1_000_000  # the unit every line is priced per
HOURS_PER_MONTH = 730  # AWS's own month in its price examples
# The checker's time per photo, not measured on AWS: InvokeEndpoint ~60 ms (the endpoint
# reads the photo from S3 and runs the model), HeadObject ~15, GetItem ~5, three DynamoDB
# writes ~8 each, Publish ~20 on half the photos, the handler's own ~8 (performance.md).
ESTIMATED_LAMBDA_MS = 120.0
# MISMATCH + UNCERTAIN: at the default thresholds about 90% of the test photos' checks,
# right bins or not (docs/model.md#the-default-thresholds).
ASSUMED_ALERT_SHARE = 0.9


@dataclass(frozen=True)
class Prices:
    """One region's list prices (US dollars)."""

    as_of: str
    region: str
    sagemaker_hosting_per_hour: Mapping[str, float]  # SageMaker real-time inference, per instance
    sagemaker_training_per_hour: Mapping[str, float]  # SageMaker training, per instance, on demand
    lambda_per_million_requests: float
    lambda_per_gb_second: float  # x86
    dynamodb_per_million_wru: float  # on demand
    dynamodb_per_million_rru: float
    sqs_per_million_requests: float  # standard queue
    sns_per_million_publishes: float  # standard topic; deliveries are priced apart
    s3_per_thousand_put: float  # S3 Standard: PUT, COPY, POST, LIST
    s3_per_thousand_get: float  # S3 Standard: GET, HEAD and the rest
    verify: Mapping[str, str] = field(default_factory=dict)  # price name -> why unsure

    @classmethod
    def from_table(cls, table: Mapping[str, Any], region: str) -> Prices:
        regions = table["regions"]
        if region not in regions:
            raise ValueError(
                f"no prices for region {region!r}; known: {', '.join(sorted(regions))}"
            )
        return cls(as_of=table["as_of"], region=region, **regions[region])

    def hosting(self, instance_type: str) -> float:
        return _price(
            self.sagemaker_hosting_per_hour, instance_type, "hosting (real-time inference)"
        )

    def training(self, instance_type: str) -> float:
        return _price(self.sagemaker_training_per_hour, instance_type, "training")

    def caveat(self, name: str) -> str:
        """``"; verify: <why>"`` for a price the table marks unsure, else nothing."""
        return f"; verify: {self.verify[name]}" if name in self.verify else ""


def _price(table: Mapping[str, float], instance_type: str, what: str) -> float:
    if instance_type not in table:
        raise ValueError(
            f"no {what} price for {instance_type!r}; known: {', '.join(sorted(table))}"
        )
    return table[instance_type]


@dataclass(frozen=True)
class CheckRequests:
    """The billed requests of one photo that reaches the model (docs/cost.md: per line)."""

    s3_puts: int = 1  # the camera's upload
    s3_gets: int = 3  # checker HeadObject; endpoint HeadObject + GetObject (s3_uri mode)
    read_units: float = 1.0  # bins GetItem, ConsistentRead=True, item under 4 KB
    write_units: float = 4.0  # check PutItem + its by-status copy, idempotency Put + Update
    # A check pending review: its copy in the pending index; then its settlement's UpdateItem,
    # the by-status copy rewritten and the pending copy deleted.
    review_write_units: float = 4.0
    sqs_sends: int = 1  # S3's notification
    sqs_per_batch: int = 2  # the event source's ReceiveMessage and DeleteMessageBatch


@dataclass(frozen=True)
class Workload:
    invocations_per_minute: float  # one endpoint instance at capacity
    instance_type: str = "ml.g4dn.xlarge"
    min_instances: int = 1
    scaling_target_per_minute: float | None = None  # auto scaling's invocations per instance
    lambda_ms: float = ESTIMATED_LAMBDA_MS  # the function's time per check
    memory_mb: int = 512
    batch_size: int = 10
    alert_share: float = ASSUMED_ALERT_SHARE  # of checks published to the alerts topic
    # Of checks pending review and settled: by default the same statuses as alerts.
    review_share: float = ASSUMED_ALERT_SHARE
    requests: CheckRequests = CheckRequests()

    def __post_init__(self) -> None:
        problems = [
            message
            for failed, message in (
                (not self.invocations_per_minute > 0, "invocations per minute must be > 0"),
                (self.min_instances < 0, "min instances must be >= 0"),
                (not self.lambda_ms >= 0, "Lambda ms per check must be >= 0"),
                (not 128 <= self.memory_mb <= 10_240, "memory must be 128..10240 MB"),
                (not 1 <= self.batch_size <= 10_000, "batch size must be 1..10000"),
                (not 0 <= self.alert_share <= 1, "alert share must be 0..1"),
                (not 0 <= self.review_share <= 1, "review share must be 0..1"),
            )
            if failed
        ]
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float  # per million checks, in ``unit``
    unit: str
    usd: float  # per million checks
    notes: str


@dataclass(frozen=True)
class MillionChecks:
    lines: tuple[Line, ...]
    floor_usd_per_month: float  # min_instances always on, whatever the volume
    checks_per_instance_month: float  # what one instance serves at capacity
    endpoint_at_target_usd: float | None  # the endpoint line at the scaling target instead

    @property
    def total_usd(self) -> float:
        return sum(line.usd for line in self.lines)


def million_checks(work: Workload, prices: Prices) -> MillionChecks:
    hourly = prices.hosting(work.instance_type)
    calls = work.requests
    per_batch = calls.sqs_per_batch / work.batch_size
    # (item, quantity per million checks, unit, $ per unit, what the quantity counts)
    priced = (
        (
            "endpoint",
            CHECKS / work.invocations_per_minute / 60,
            f"instance-h {work.instance_type}",
            hourly,
            f"${hourly}/h{prices.caveat(work.instance_type)}",
        ),
        (
            "Lambda requests",
            CHECKS / work.batch_size,
            "invocations",
            prices.lambda_per_million_requests / 1e6,
            f"one per batch of {work.batch_size}, batches assumed full",
        ),
        (
            "Lambda compute",
            CHECKS * work.lambda_ms / 1000 * work.memory_mb / 1024,
            "GB-s",
            prices.lambda_per_gb_second,
            f"{work.lambda_ms:g} ms x {work.memory_mb} MB per check",
        ),
        (
            "DynamoDB writes",
            CHECKS * (calls.write_units + work.review_share * calls.review_write_units),
            "WRU",
            prices.dynamodb_per_million_wru / 1e6,
            "check PutItem + its by-status index copy, idempotency PutItem + UpdateItem; "
            f"review share {work.review_share:g}: pending index copy, settlement UpdateItem "
            "+ by-status copy + pending copy deleted",
        ),
        (
            "DynamoDB reads",
            CHECKS * calls.read_units,
            "RRU",
            prices.dynamodb_per_million_rru / 1e6,
            "bins GetItem, strongly consistent",
        ),
        (
            "SQS",
            CHECKS * (calls.sqs_sends + per_batch),
            "requests",
            prices.sqs_per_million_requests / 1e6,
            f"S3's send per photo; receive + delete per batch of {work.batch_size}",
        ),
        (
            "SNS",
            CHECKS * work.alert_share,
            "publishes",
            prices.sns_per_million_publishes / 1e6,
            f"alert share {work.alert_share:g}; deliveries not counted",
        ),
        (
            "S3 PUT",
            CHECKS * calls.s3_puts,
            "requests",
            prices.s3_per_thousand_put / 1000,
            "the camera's upload; storage not counted",
        ),
        (
            "S3 GET/HEAD",
            CHECKS * calls.s3_gets,
            "requests",
            prices.s3_per_thousand_get / 1000,
            "checker HeadObject; endpoint HeadObject + GetObject (s3_uri mode)",
        ),
    )
    lines = tuple(Line(item, n, unit, n * price, notes) for item, n, unit, price, notes in priced)
    target = work.scaling_target_per_minute
    at_target = None
    if target is not None and target < work.invocations_per_minute:
        at_target = CHECKS / target / 60 * hourly
    return MillionChecks(
        lines=lines,
        floor_usd_per_month=work.min_instances * HOURS_PER_MONTH * hourly,
        checks_per_instance_month=work.invocations_per_minute * 60 * HOURS_PER_MONTH,
        endpoint_at_target_usd=at_target,
    )


@dataclass(frozen=True)
class TrainingJob:
    name: str
    instance_type: str
    instance_count: int
    training_s: float  # on the instances, spot interruptions' restarts included
    billable_s: float  # what is billed, at the on-demand rate

    @classmethod
    def from_description(cls, job: Mapping[str, Any]) -> TrainingJob:
        """A DescribeTrainingJob response."""
        name = str(job.get("TrainingJobName", "a job without TrainingJobName"))
        try:
            resources = job["ResourceConfig"]
            return cls(
                name=name,
                instance_type=str(resources["InstanceType"]),
                instance_count=int(resources.get("InstanceCount", 1)),
                training_s=float(job["TrainingTimeInSeconds"]),
                billable_s=float(job["BillableTimeInSeconds"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{name}: not a finished DescribeTrainingJob response ({error})"
            ) from error


@dataclass(frozen=True)
class RetrainingCost:
    jobs: int | None  # None when only their seconds are known
    instance_hours_billed: float
    instance_hours_trained: float | None  # known from DescribeTrainingJob responses only
    billed_usd: float  # an upper bound when ``upper_bound``
    on_demand_usd: float | None  # the training time at on-demand prices, when known
    upper_bound: bool = False

    @property
    def spot_saved_usd(self) -> float | None:
        return None if self.on_demand_usd is None else self.on_demand_usd - self.billed_usd


def retraining_from_jobs(jobs: Iterable[TrainingJob], prices: Prices) -> RetrainingCost:
    jobs = list(jobs)
    if not jobs:
        raise ValueError("no training jobs given")
    rates = [prices.training(job.instance_type) * job.instance_count / 3600 for job in jobs]
    return RetrainingCost(
        jobs=len(jobs),
        instance_hours_billed=sum(job.billable_s * job.instance_count for job in jobs) / 3600,
        instance_hours_trained=sum(job.training_s * job.instance_count for job in jobs) / 3600,
        billed_usd=sum(job.billable_s * rate for job, rate in zip(jobs, rates, strict=True)),
        on_demand_usd=sum(job.training_s * rate for job, rate in zip(jobs, rates, strict=True)),
    )


def retraining_from_seconds(
    billable_s: float, instance_type: str, prices: Prices
) -> RetrainingCost:
    """Billable seconds of all jobs, one instance each; spot's saving is unknown then."""
    if not billable_s >= 0:
        raise ValueError("training seconds must be >= 0")
    return RetrainingCost(
        jobs=None,
        instance_hours_billed=billable_s / 3600,
        instance_hours_trained=None,
        billed_usd=billable_s / 3600 * prices.training(instance_type),
        on_demand_usd=None,
    )


def retraining_upper_bound(
    *, jobs: int, max_runtime_s: int, instance_type: str, prices: Prices
) -> RetrainingCost:
    """Every job running its whole ``max_runtime_s`` and billed in full: spot only lowers it."""
    hours = jobs * max_runtime_s / 3600
    return RetrainingCost(
        jobs=jobs,
        instance_hours_billed=hours,
        instance_hours_trained=None,
        billed_usd=hours * prices.training(instance_type),
        on_demand_usd=None,
        upper_bound=True,
    )
