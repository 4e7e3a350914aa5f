"""``bincheck train start``: start the training pipeline with a request checked first.

The request is checked with the pipeline's own rules (``lambdas/retraining/request.py``) and
its data folders are looked up in S3, so that a typo costs a second here rather than a
failed execution, and a run already in progress is named rather than started beside. The
execution's first state checks it again with what only the deployment knows: its
defaults, its training bucket and its time limit.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdas.retraining.request import FIGURES, LOSSES, labels_of, parse_request
from lambdas.retraining.runs import RunInProgress, check_first, running_executions

ARN_VARIABLE = "TRAINING_PIPELINE_ARN"
# Stands in for the deployment's default data folder when --data is not given.
_SOME_DATA = "s3://deployment-default/data/default/"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bincheck train start",
        description="Start the training pipeline (tune, train on spot, evaluate, promote).",
        epilog="Fields not given take the deployment's defaults (pipeline_defaults).",
    )
    parser.add_argument(
        "--data", help="s3://TRAINING_BUCKET/data/NAME/: a data folder (labels.csv, images/)"
    )
    parser.add_argument(
        "--extra-data",
        nargs="+",
        metavar="URI",
        help="more data folders s3://TRAINING_BUCKET/data/NAME/, every photo trained on "
        "(validation and test photos come from --data alone)",
    )
    parser.add_argument(
        "--state-machine",
        default=os.getenv(ARN_VARIABLE),
        help=f"the stack's TrainingPipeline output (default: ${ARN_VARIABLE})",
    )
    parser.add_argument("--input", type=Path, help="a JSON file of request fields")
    parser.add_argument("--instance-type", help="e.g. ml.g5.xlarge")
    parser.add_argument("--max-jobs", type=int, help="tuning budget: training jobs in all")
    parser.add_argument("--max-parallel-jobs", type=int, help="tuning jobs at once")
    parser.add_argument("--max-runtime-s", type=int, help="per job, training time")
    parser.add_argument("--max-wait-s", type=int, help="per job, with waiting for spot")
    parser.add_argument("--objective", choices=FIGURES, help="validation figure to tune")
    for name, kind in (("lr", float), ("batch-size", int), ("weight-decay", float)):
        parser.add_argument(f"--{name}", type=kind, nargs=2, metavar=("MIN", "MAX"))
    parser.add_argument("--losses", nargs="+", choices=LOSSES)
    parser.add_argument("--promotion-metric", choices=FIGURES, help="test figure that decides")
    parser.add_argument("--promotion-margin", type=float, help="how much better it must be")
    parser.add_argument(
        "--reuse-best-tuning-job",
        action="store_true",
        default=None,
        help="promote the best trial's model instead of training a final one",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a train.py option for every job, e.g. --set epochs=20 (repeatable)",
    )
    parser.add_argument("--name", help="the execution's name (default train-<UTC time>)")
    parser.add_argument("--dry-run", action="store_true", help="check and print; start nothing")
    return parser


def request_from(args: argparse.Namespace) -> dict[str, Any]:
    """The fields the user gave: a file first, then options over it."""
    request: dict[str, Any] = {}
    if args.input:
        request = json.loads(args.input.read_text())
        if not isinstance(request, dict):
            raise ValueError(f"{args.input} must hold a JSON object")
    for field in (
        "data",
        "extra_data",
        "instance_type",
        "max_jobs",
        "max_parallel_jobs",
        "max_runtime_s",
        "max_wait_s",
        "objective",
        "lr",
        "batch_size",
        "weight_decay",
        "losses",
        "promotion_metric",
        "promotion_margin",
        "reuse_best_tuning_job",
    ):
        value = getattr(args, field)
        if value is not None:
            request[field] = value
    for item in args.set:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
        request.setdefault("hyperparameters", {})[name] = value
    return request


def start(argv: Sequence[str]) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from lambdas.retraining.storage import TrainingStorage

    args = build_parser().parse_args(argv)
    request = request_from(args)
    checked = parse_request({"data": _SOME_DATA, **request})
    try:
        # The folders given: the deployment's default data folder is not known here.
        given = [checked.data] if "data" in request else []
        labels = [labels_of(folder) for folder in (*given, *checked.extra_data)]
        if labels:
            missing = TrainingStorage(boto3.client("s3")).missing(labels)
            if missing:
                raise ValueError(
                    "no data folder (labels.csv) at "
                    + ", ".join(uri.rsplit("/", 1)[0] + "/" for uri in missing)
                )
        if args.dry_run:
            print(json.dumps(request, indent=2, sort_keys=True))
            return 0
        if not args.state_machine:
            raise ValueError(
                f"which pipeline? pass --state-machine ARN or set {ARN_VARIABLE} "
                "(the stack's TrainingPipeline output)"
            )
        sfn = boto3.client("stepfunctions")
        # The execution would stop at once (one run at a time): say so before starting it.
        # A run not started yet comes after every running one, whatever this clock says.
        running = running_executions(sfn, args.state_machine)
        check_first("", datetime.max.replace(tzinfo=UTC), running)
        name = args.name or datetime.now(UTC).strftime("train-%Y%m%d-%H%M%S")
        started = sfn.start_execution(
            stateMachineArn=args.state_machine, name=name, input=json.dumps(request)
        )
    except (BotoCoreError, ClientError) as error:
        raise ValueError(f"could not start the training pipeline: {error}") from error
    except RunInProgress as error:
        raise ValueError(str(error)) from error
    arn = started["executionArn"]
    print(f"started {arn}")
    print(f"follow it: aws stepfunctions describe-execution --execution-arn {arn}")
    return 0
