"""``bincheck model pull``: the model in production, downloaded to deploy it again."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .common import client


def add_to(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("model", help="the model in production").add_subparsers(
        required=True, metavar="ACTION"
    )
    pull = models.add_parser(
        "pull",
        help="download the model the training pipeline's record names, to deploy it again",
    )
    pull.add_argument(
        "--record",
        default=os.getenv("PRODUCTION_RECORD"),
        help="the stack's ProductionModelRecord output (default: $PRODUCTION_RECORD)",
    )
    pull.add_argument(
        "--out",
        type=Path,
        default=Path("build/production.tar.gz"),
        help="where to write it (default: build/production.tar.gz)",
    )
    pull.set_defaults(run=pull_model)


def pull_model(args: argparse.Namespace) -> int:
    from ..production import pull

    if not args.record:
        raise ValueError("no record: pass --record NAME (the stack's ProductionModelRecord)")
    record = pull(client("ssm"), client("s3"), args.record, args.out)
    print(f"{args.out}: {record['version']}, from {record['model_data']}")
    print(
        f'to keep serving it through the next deploy, set "model_artifact": "{args.out}" '
        "in the bincheck settings (cdk.json's context, or -c bincheck=...)"
    )
    return 0
