"""A training run's request: what an execution's input may say, its defaults, and the checks
that refuse a bad request before SageMaker spends anything.

Pure (no AWS): the pipeline's validate function and ``bincheck train start`` both use it.
The input is one flat JSON object; every field is optional except ``data``::

    {"data": "s3://<training bucket>/data/abid/", "max_jobs": 20, "lr": [0.0001, 0.003],
     "hyperparameters": {"epochs": 20, "workers": 4}}

``data`` is a folder holding three data folders, ``train/``, ``validation/`` and ``test/``
(each ``images/`` + ``labels.csv``): SageMaker's three channels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

FIGURES = ("accuracy", "off_by_one", "rmse", "mae")  # what train.py reports on the test set
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
LOSSES = ("ce", "ordinal")
CHANNELS = ("train", "validation", "test")
DATA_FOLDER = "data/"  # the training role reads this folder of the bucket, nothing else
TUNED = frozenset({"lr", "batch-size", "weight-decay", "loss"})
# Set by the pipeline itself, or data locations SageMaker's channels give train.py.
RESERVED = TUNED | {"select", "version", "data", "train", "val", "test"}
RESERVED |= {"model-dir", "output-dir", "checkpoint-dir"}
MAX_JOB_SECONDS = 28 * 24 * 3600  # SageMaker's ceiling on MaxRuntime/MaxWaitTimeInSeconds
DEPLOYMENT_ALLOWANCE_S = 2 * 3600  # model, endpoint update with its bake time, notices
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.(\d*x?large|metal)")
_HYPERPARAMETER = re.compile(r"[a-z][a-z0-9-]{0,62}")


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
        """The files whose presence says the three data folders are there."""
        return [f"{self.data}{channel}/labels.csv" for channel in CHANNELS]


FIELDS = tuple(f.name for f in fields(RunRequest))


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
    check = _Checker(merged, problems)
    base = RunRequest(data="")
    values: dict[str, Any] = {
        "data": check.data(bucket),
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
    values = {k: getattr(base, k) if v is None else v for k, v in values.items()}
    if problems:
        raise InvalidRequest(problems)
    request = RunRequest(**values)
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


class _Checker:
    """Reads one field each; a missing field is ``None`` (the default), a bad one a problem."""

    def __init__(self, values: Mapping[str, Any], problems: list[str]) -> None:
        self.values = values
        self.problems = problems

    def _bad(self, message: str) -> None:
        self.problems.append(message)

    def data(self, bucket: str | None) -> str | None:
        value = self.values.get("data")
        if value is None:
            self._bad("data is required: s3://BUCKET/data/NAME/ holding train/, validation/, test/")
            return None
        match = _S3_URI.fullmatch(value) if isinstance(value, str) else None
        if not match:
            self._bad(f"data must be an S3 folder URI s3://BUCKET/data/NAME/, got {value!r}")
            return None
        if bucket is not None and match[1] != bucket:
            self._bad(
                f"data must be in the pipeline's bucket s3://{bucket}/{DATA_FOLDER}, got {value}"
            )
        if not match[2].startswith(DATA_FOLDER) or match[2].rstrip("/") + "/" == DATA_FOLDER:
            self._bad(f"data must be a folder under {DATA_FOLDER} of the bucket, got {value}")
        return value.rstrip("/") + "/"

    def instance_type(self) -> str | None:
        value = self.values.get("instance_type")
        if value is not None and not (isinstance(value, str) and _INSTANCE_TYPE.fullmatch(value)):
            self._bad(f"instance_type must be a SageMaker type such as ml.g5.xlarge, got {value!r}")
            return None
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not _is_int(value) or not low <= value <= high:
            self._bad(f"{name} must be a whole number in {low}..{high}, got {value!r}")
            return None
        return int(value)

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not _is_number(value) or not low <= value <= high:
            self._bad(f"{name} must be a number in {low:g}..{high:g}, got {value!r}")
            return None
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self.values.get(name)
        if value is not None and value not in choices:
            self._bad(f"{name} must be one of {', '.join(choices)}, got {value!r}")
            return None
        return value

    def flag(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is not None and not isinstance(value, bool):
            self._bad(f"{name} must be true or false, got {value!r}")
            return None
        return value

    def span(
        self, name: str, kind: type, *, low: float, high: float, open_low: bool = False
    ) -> tuple[Any, Any] | None:
        """A search range ``[min, max]`` with ``low <= min < max <= high``."""
        value = self.values.get(name)
        if value is None:
            return None
        valid = _is_int if kind is int else _is_number
        ok = isinstance(value, list | tuple) and len(value) == 2 and all(valid(v) for v in value)
        if ok:
            least, most = value
            above_low = least > low if open_low else least >= low
            ok = above_low and least < most <= high
        if not ok:
            bound = "(" if open_low else "["
            noun = "whole numbers" if kind is int else "numbers"
            self._bad(
                f"{name} must be [min, max], {noun} with min < max within "
                f"{bound}{low:g}, {high:g}], got {value!r}"
            )
            return None
        return kind(value[0]), kind(value[1])

    def losses(self) -> tuple[str, ...] | None:
        value = self.values.get("losses")
        if value is None:
            return None
        if (
            not isinstance(value, list | tuple)
            or not value
            or len(set(value)) != len(value)
            or not set(value) <= set(LOSSES)
        ):
            self._bad(f"losses must be a non-empty list of distinct {LOSSES}, got {value!r}")
            return None
        return tuple(value)

    def hyperparameters(self) -> dict[str, str] | None:
        """train.py options for every job, ``--name value``: a name's underscores are read as
        dashes, as train.py spells its options."""
        value = self.values.get("hyperparameters")
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self._bad(f"hyperparameters must be an object of name: value, got {value!r}")
            return None
        result = {}
        for raw_name, raw_value in value.items():
            name = str(raw_name).replace("_", "-")
            if not _HYPERPARAMETER.fullmatch(name):
                self._bad(f"hyperparameter {raw_name!r} is not a train.py option name")
            elif name in RESERVED:
                self._bad(f"hyperparameter {name!r} is set by the pipeline, not by the request")
            elif isinstance(raw_value, bool) or not isinstance(raw_value, str | int | float):
                self._bad(
                    f"hyperparameter {name!r} must be a string or a number (flags such as "
                    f"--tta cannot be passed as name=value), got {raw_value!r}"
                )
            else:
                result[name] = str(raw_value)
        return result


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
