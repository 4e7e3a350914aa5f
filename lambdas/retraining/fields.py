"""Reading a run request's fields one by one: each reader returns the value, ``None`` for
a missing field (the default applies), or records a problem and the field's name."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .instance_types import TRAINING_INSTANCE_TYPES

DATA_FOLDER = "data/"  # the training role reads this folder of the bucket, nothing else
# Extra training folders: each is a channel of every job (SageMaker allows 20 in all).
MAX_EXTRA_DATA = 4
MAX_S3_URI = 1024  # SageMaker's S3Uri, in a channel as anywhere
LOSSES = ("ce", "ordinal")
TUNED = frozenset({"lr", "batch-size", "weight-decay", "loss"})
PLANNED = frozenset({"select", "version"})  # plan.py sets them for every job
# SageMaker's PyTorch toolkit reads the entry point, the code and its log level from these,
# which the state machine sets (infra/pipeline/construct.py); a tuning job adds the last
# one to each trial.
TOOLKIT = frozenset(
    {"sagemaker_program", "sagemaker_submit_directory", "sagemaker_container_log_level"}
)
ADDED_BY_TUNING = frozenset({"_tuning_objective_metric"})
# SageMaker takes 100 hyperparameters a job (CreateTrainingJob's HyperParameters, a tuning
# job's StaticHyperParameters), values of at most 2,500 characters: the request has what the
# pipeline leaves. Names are train.py options, far shorter than the API's 256 characters.
API_HYPERPARAMETERS = 100
MAX_HYPERPARAMETERS = API_HYPERPARAMETERS - len(TUNED | PLANNED | TOOLKIT | ADDED_BY_TUNING)
MAX_HYPERPARAMETER_VALUE = 2500
# Step Functions limits a state to 256 KiB of JSON, and a run's state holds the request's
# hyperparameters twice (the plan, and the final job's description): a quarter for them.
MAX_HYPERPARAMETER_BYTES = 64 * 1024
# Set by the pipeline itself; data locations SageMaker gives train.py (the production model
# too: its channel); and the split seed, which fixes the held-out test photos of a data
# folder: every run tests on the same ones.
RESERVED = TUNED | PLANNED | {"data", "extra-train", "train", "val", "test"}
RESERVED |= {"split-seed", "against", "model-dir", "output-dir", "checkpoint-dir"}
# train.py's switches, which take true or false: a JSON boolean is passed as one of those.
SWITCHES = frozenset({"tta", "freeze-backbone"})
# A refit validates nothing: the tuning jobs would have no figure to be ranked by.
NOT_FOR_TUNING = frozenset({"refit"})
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)")
_HYPERPARAMETER = re.compile(r"[a-z][a-z0-9-]{0,62}")


class FieldReader:
    """Reads one field each; a missing field is ``None`` (the default), a bad one a problem."""

    def __init__(self, values: Mapping[str, Any], problems: list[str]) -> None:
        self.values = values
        self.problems = problems
        self.invalid: set[str] = set()

    def _bad(self, name: str, message: str) -> None:
        self.invalid.add(name)
        self.problems.append(message)

    def data(self, bucket: str | None) -> str | None:
        value = self.values.get("data")
        if value is None:
            self._bad(
                "data",
                "data is required: s3://BUCKET/data/NAME/, a data folder (labels.csv, images/)",
            )
            return None
        return self._folder("data", "data", value, bucket)

    def extra_data(self, bucket: str | None, data: str | None) -> tuple[str, ...] | None:
        """More data folders, trained on only: each as ``data`` is, none twice, not ``data``."""
        value = self.values.get("extra_data")
        if value is None:
            return None
        if not isinstance(value, list | tuple) or len(value) > MAX_EXTRA_DATA:
            self._bad(
                "extra_data",
                f"extra_data must be a list of at most {MAX_EXTRA_DATA} S3 folder URIs "
                f"s3://BUCKET/data/NAME/, got {value!r}",
            )
            return None
        folders: list[str] = []
        for index, item in enumerate(value):
            folder = self._folder("extra_data", f"extra_data[{index}]", item, bucket)
            if folder is None:
                continue
            if folder == data:
                self._bad(
                    "extra_data",
                    f"extra_data[{index}] is the data folder {folder}: its validation and "
                    "test photos would be trained on",
                )
            elif folder in folders:
                self._bad("extra_data", f"extra_data[{index}] repeats {folder}")
            folders.append(folder)
        return tuple(folders)

    def _folder(self, name: str, label: str, value: Any, bucket: str | None) -> str | None:
        """A data folder's URI ``s3://BUCKET/data/NAME/`` (the field ``name``, ``label`` in
        messages), with one trailing slash."""
        match = _S3_URI.fullmatch(value) if isinstance(value, str) else None
        if not match:
            self._bad(
                name, f"{label} must be an S3 folder URI s3://BUCKET/data/NAME/, got {value!r}"
            )
            return None
        if bucket is not None and match[1] != bucket:
            self._bad(
                name,
                f"{label} must be in the pipeline's bucket s3://{bucket}/{DATA_FOLDER}, "
                f"got {value}",
            )
        if not match[2].startswith(DATA_FOLDER) or match[2].rstrip("/") + "/" == DATA_FOLDER:
            self._bad(
                name, f"{label} must be a folder under {DATA_FOLDER} of the bucket, got {value}"
            )
        folder = str(value).rstrip("/") + "/"
        if len(folder) > MAX_S3_URI:
            self._bad(
                name,
                f"{label} is {len(folder):,} characters long as a folder URI; SageMaker takes "
                f"S3 URIs of at most {MAX_S3_URI:,}",
            )
        return folder

    def instance_type(self) -> str | None:
        """One of the types SageMaker trains on (``instance_types.py``)."""
        value = self.values.get("instance_type")
        if value is not None and not (isinstance(value, str) and value in TRAINING_INSTANCE_TYPES):
            types = sorted(TRAINING_INSTANCE_TYPES)
            nearest = difflib.get_close_matches(value, types) if isinstance(value, str) else []
            hint = f" (nearest: {', '.join(nearest)})" if nearest else ""
            self._bad(
                "instance_type",
                "instance_type must be a type SageMaker trains on, such as ml.g5.xlarge, got "
                f"{value!r}{hint}",
            )
            return None
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not _is_int(value) or not low <= value <= high:
            self._bad(name, f"{name} must be a whole number in {low}..{high}, got {value!r}")
            return None
        return int(value)

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not _is_number(value) or not low <= value <= high:
            self._bad(name, f"{name} must be a number in {low:g}..{high:g}, got {value!r}")
            return None
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self.values.get(name)
        if value is not None and value not in choices:
            self._bad(name, f"{name} must be one of {', '.join(choices)}, got {value!r}")
            return None
        return value

    def flag(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is not None and not isinstance(value, bool):
            self._bad(name, f"{name} must be true or false, got {value!r}")
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
                name,
                f"{name} must be [min, max], {noun} with min < max within "
                f"{bound}{low:g}, {high:g}], got {value!r}",
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
            self._bad(
                "losses", f"losses must be a non-empty list of distinct {LOSSES}, got {value!r}"
            )
            return None
        return tuple(value)

    def hyperparameters(self) -> dict[str, str] | None:
        """train.py options for every job, ``--name value``: a name's underscores are read as
        dashes, as train.py spells its options. Within SageMaker's limits, less what the
        pipeline sets, and Step Functions' (``MAX_HYPERPARAMETER_BYTES``)."""
        value = self.values.get("hyperparameters")
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self._bad(
                "hyperparameters",
                f"hyperparameters must be an object of name: value, got {value!r}",
            )
            return None
        result = {}
        for raw_name, raw_value in value.items():
            name = str(raw_name).replace("_", "-")
            if not _HYPERPARAMETER.fullmatch(name):
                self._bad(
                    "hyperparameters", f"hyperparameter {raw_name!r} is not a train.py option name"
                )
            elif name in RESERVED:
                self._bad(
                    "hyperparameters",
                    f"hyperparameter {name!r} is set by the pipeline, not by the request",
                )
            elif name in NOT_FOR_TUNING:
                self._bad(
                    "hyperparameters",
                    f"hyperparameter {name!r} would leave the tuning jobs without validation "
                    "figures to rank them by",
                )
            elif isinstance(raw_value, bool) and name in SWITCHES:
                result[name] = str(raw_value).lower()
            elif isinstance(raw_value, bool) or not isinstance(raw_value, str | int | float):
                self._bad(
                    "hyperparameters",
                    f"hyperparameter {name!r} must be a string or a number (true or false "
                    f"only for the switches {', '.join(sorted(SWITCHES))}), got {raw_value!r}",
                )
            elif len(str(raw_value)) > MAX_HYPERPARAMETER_VALUE:
                self._bad(
                    "hyperparameters",
                    f"hyperparameter {name!r} is {len(str(raw_value)):,} characters long; "
                    f"SageMaker takes values of at most {MAX_HYPERPARAMETER_VALUE:,}",
                )
            else:
                result[name] = str(raw_value)
        if len(value) > MAX_HYPERPARAMETERS:
            self._bad(
                "hyperparameters",
                f"hyperparameters may name at most {MAX_HYPERPARAMETERS} options, got "
                f"{len(value)}: SageMaker takes {API_HYPERPARAMETERS} a job, and the pipeline "
                f"sets {API_HYPERPARAMETERS - MAX_HYPERPARAMETERS}",
            )
        size = len(json.dumps(result, ensure_ascii=False).encode())
        if size > MAX_HYPERPARAMETER_BYTES:
            self._bad(
                "hyperparameters",
                f"hyperparameters take {size:,} bytes as JSON, more than "
                f"{MAX_HYPERPARAMETER_BYTES:,}: a run's state, which Step Functions limits to "
                "256 KiB, holds them twice",
            )
        return result


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
