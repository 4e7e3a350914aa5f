"""A validated request turned into what the state machine's SageMaker calls need: job
names, strings for SageMaker's ranges and hyperparameters, S3 locations.

Pure. The request bodies themselves are written out in the state machine's definition
(``infra/pipeline/jobs.py``), where the template tests can read them; all but the jobs'
``InputDataConfig``, whose length follows the request's ``extra_data``: ``channels`` writes it
here, and the definition passes it on as it is.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from .request import LOWER_IS_BETTER, RunRequest
from .runs import started

NAME_PREFIX = "bincheck-"  # every SageMaker resource the pipeline creates: IAM scopes by it
EXTRA_CHANNEL = "extra"  # train.py reads SM_CHANNEL_EXTRA, SM_CHANNEL_EXTRA1, ...


def run_id(execution_name: str, started_at: str) -> str:
    """``20261121-090000-3f2a``: sortable, and short enough for a tuning job's name
    (32 characters at most, the training jobs it starts add 13 more)."""
    moment = started(started_at)
    digest = hashlib.sha256(execution_name.encode()).hexdigest()[:4]
    return f"{moment:%Y%m%d-%H%M%S}-{digest}"


def plan(request: RunRequest, *, bucket: str, run: str, production_model: str) -> dict[str, Any]:
    """``production_model``: the artifact every job scores on its test photos as well
    (its ``production`` channel), for the promotion's paired comparison."""
    name = f"{NAME_PREFIX}{run}"
    version = f"counter-{run}"
    return {
        "run_id": run,
        "data": request.data,
        "channels": channels(request, production_model),
        "tuning_job": name,
        "training_job": f"{name}-final",
        "model": name,
        "endpoint_config": name,
        "version": version,
        "instance_type": request.instance_type,
        "volume_gb": request.volume_gb,
        "max_runtime_s": request.max_runtime_s,
        "max_wait_s": request.max_wait_s,
        "max_jobs": request.max_jobs,
        "max_parallel_jobs": request.max_parallel_jobs,
        "objective": {
            "metric": f"val_{request.objective}",
            "type": "Minimize" if request.objective in LOWER_IS_BETTER else "Maximize",
        },
        "ranges": {
            "lr": _span(request.lr),
            "batch_size": _span(request.batch_size),
            "weight_decay": _span(request.weight_decay),
            "losses": list(request.losses),
        },
        # The best epoch is chosen on the tuning objective; every job names its model.
        "hyperparameters": {
            **request.hyperparameters,
            "select": request.objective,
            "version": version,
        },
        # Trailing slashes: SageMaker syncs a prefix, and .../tuning would also match
        # .../tuning2.
        "checkpoints": {
            "tuning": f"s3://{bucket}/checkpoints/{run}/tuning/",
            "final": f"s3://{bucket}/checkpoints/{run}/final/",
        },
        "output_path": f"s3://{bucket}/jobs/{run}/",
        "production_model": production_model,
        "promotion": {"metric": request.promotion_metric, "margin": request.promotion_margin},
        "reuse_best_tuning_job": request.reuse_best_tuning_job,
    }


def channels(request: RunRequest, production_model: str) -> list[dict[str, Any]]:
    """Every job's ``InputDataConfig``: the data folder (``data``, train.py's
    ``SM_CHANNEL_DATA``: split, test photos held out), each extra folder (``extra``,
    ``extra1``, ...: trained on only) and the production model (``production``: scored on
    the same test photos)."""
    folders = {"data": request.data}
    for index, folder in enumerate(request.extra_data):
        folders[f"{EXTRA_CHANNEL}{index or ''}"] = folder
    folders["production"] = production_model
    return [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }
        for name, uri in folders.items()
    ]


def _span(values: tuple[Any, Any]) -> dict[str, str]:
    return {"min": _text(values[0]), "max": _text(values[1])}


def _text(value: float) -> str:
    """A plain decimal (0.00001, not 1e-05): SageMaker's ranges are strings."""
    return format(Decimal(repr(value)), "f")
