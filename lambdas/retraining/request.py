"""A training run's request: what an execution's input may say, its defaults, and the checks
that refuse a bad request before SageMaker spends anything.

Pure (no AWS): the pipeline's validate function and ``bincheck train start`` both use it.
The input is one flat JSON object; every field is optional except ``data``::

    {"data": "s3://<training bucket>/data/abid/", "max_jobs": 20, "lr": [0.0001, 0.003],
     "hyperparameters": {"epochs": 20, "workers": 4}}

``data`` is a data folder as every data-facing command takes it (``images/<id>.jpg`` and
``labels.csv``, as ``bincheck data abid`` writes it, copied to the training bucket): the
jobs' ``data`` channel. train.py keeps its ``split`` column, or else cuts the same
deterministic split every time, so the test photos of a folder are always the same and never
trained or selected on. ``extra_data`` (at most ``MAX_EXTRA_DATA``) names more data folders in
the same bucket whose every photo is trained on, never validated or tested on: the channels
``extra``, ``extra1``, ... (``plan.channels``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .fields import LOSSES, FieldReader

FIGURES = ("accuracy", "off_by_one", "rmse", "mae")  # what train.py reports on the test set
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
MAX_JOB_SECONDS = 28 * 24 * 3600  # SageMaker's ceiling on MaxRuntime/MaxWaitTimeInSeconds
DEPLOYMENT_ALLOWANCE_S = 2 * 3600  # model, endpoint update with its bake time, notices


class InvalidRequest(ValueError):
    """Every problem of a request at once, so one correction fixes them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid training run request:\n" + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class RunRequest:
    data: str
    extra_data: tuple[str, ...] = ()  # more data folders, trained on only
    instance_type: str = "ml.g4dn.xlarge"
    volume_gb: int = 50
    max_jobs: int = 12  # the tuning budget: training jobs in all...
    max_parallel_jobs: int = 3  # ...and at once
    max_runtime_s: int = 4 * 3600  # per training job, training time only
    max_wait_s: int = 8 * 3600  # per training job, including waiting for spot capacity
    objective: str = "accuracy"  # the validation figure the tuning job optimises
    lr: tuple[float, float] = (1e-4, 3e-3)
    batch_size: tuple[int, int] = (16, 64)
    weight_decay: tuple[float, float] = (0.0, 0.1)
    losses: tuple[str, ...] = LOSSES
    hyperparameters: Mapping[str, str] = field(default_factory=dict)  # for every job
    promotion_metric: str = "accuracy"  # the test figure that decides promotion...
    promotion_margin: float = 0.01  # ...and by how much the new model must beat production
    reuse_best_tuning_job: bool = False  # promote the best tuning job's model, no retraining

    @property
    def worst_case_s(self) -> int:
        """How long the run may take when every job waits and runs as long as allowed."""
        rounds = -(-self.max_jobs // self.max_parallel_jobs)
        final = 0 if self.reuse_best_tuning_job else self.max_wait_s
        return rounds * self.max_wait_s + final + DEPLOYMENT_ALLOWANCE_S

    @property
    def label_uris(self) -> list[str]:
        """The files whose presence says the data folders are there."""
        return [labels_of(folder) for folder in (self.data, *self.extra_data)]


def labels_of(folder: str) -> str:
    """A data folder's ``labels.csv``: the file whose presence says the folder is there."""
    return f"{folder}labels.csv"


FIELDS = tuple(f.name for f in fields(RunRequest))
BUDGET = {"max_jobs", "max_parallel_jobs", "max_runtime_s", "max_wait_s", "reuse_best_tuning_job"}


def parse_request(
    raw: Any,
    *,
    defaults: Mapping[str, Any] | None = None,
    bucket: str | None = None,
    timeout_s: int | None = None,
) -> RunRequest:
    """``raw`` over the deployment's ``defaults`` over the built-in ones.

    ``bucket`` (the pipeline's training bucket) and ``timeout_s`` (the state machine's
    limit) are checked when known: the command line knows neither.
    """
    if not isinstance(raw, Mapping):
        raise InvalidRequest([f"the input must be a JSON object, got {type(raw).__name__}"])
    merged = {**(defaults or {}), **raw}
    problems: list[str] = []
    unknown = sorted(set(merged) - set(FIELDS))
    if unknown:
        problems.append(f"unknown fields {unknown}; known: {', '.join(FIELDS)}")
    check = FieldReader(merged, problems)
    base = RunRequest(data="")
    data = check.data(bucket)
    values: dict[str, Any] = {
        "data": data,
        "extra_data": check.extra_data(bucket, data),
        "instance_type": check.instance_type(),
        "volume_gb": check.integer("volume_gb", 1, 16_384),
        "max_jobs": check.integer("max_jobs", 1, 500),
        "max_parallel_jobs": check.integer("max_parallel_jobs", 1, 100),
        "max_runtime_s": check.integer("max_runtime_s", 600, MAX_JOB_SECONDS),
        "max_wait_s": check.integer("max_wait_s", 600, MAX_JOB_SECONDS),
        "objective": check.choice("objective", FIGURES),
        "lr": check.span("lr", float, low=0.0, high=1.0, open_low=True),
        "batch_size": check.span("batch_size", int, low=1, high=4096),
        "weight_decay": check.span("weight_decay", float, low=0.0, high=1.0),
        "losses": check.losses(),
        "hyperparameters": check.hyperparameters(),
        "promotion_metric": check.choice("promotion_metric", FIGURES),
        "promotion_margin": check.number("promotion_margin", 0.0, 10.0),
        "reuse_best_tuning_job": check.flag("reuse_best_tuning_job"),
    }
    request = RunRequest(**{k: getattr(base, k) if v is None else v for k, v in values.items()})
    # Limits that depend on each other, among the fields that are valid on their own.
    if not check.invalid & BUDGET:
        problems.extend(_cross_checks(request, timeout_s))
    if problems:
        raise InvalidRequest(problems)
    return request


def _cross_checks(request: RunRequest, timeout_s: int | None) -> Iterator[str]:
    if request.max_parallel_jobs > request.max_jobs:
        yield (
            f"max_parallel_jobs ({request.max_parallel_jobs}) must not exceed "
            f"max_jobs ({request.max_jobs})"
        )
    if request.max_wait_s < request.max_runtime_s:
        yield (
            f"max_wait_s ({request.max_wait_s}) must be at least max_runtime_s "
            f"({request.max_runtime_s}): it includes the time spent waiting for spot capacity"
        )
    elif timeout_s is not None and request.worst_case_s > timeout_s:
        yield (
            f"this budget may take {request.worst_case_s / 3600:.1f} h, more than the "
            f"pipeline's limit of {timeout_s / 3600:.1f} h: lower max_jobs or max_wait_s, "
            "raise max_parallel_jobs, or deploy with a larger pipeline_timeout_h"
        )
