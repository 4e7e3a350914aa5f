"""``bincheck demo``: the whole system locally on real photos (the run is ``bincheck.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import DEFAULT_MODEL, require_model


def add_to(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole system locally on real photos (moto, model server, checker)"
    )
    demo.add_argument("--photos", type=Path, help="a data folder (images/ + labels.csv)")
    demo.add_argument("--limit", type=int, default=60, help="at most N photos (default 60)")
    demo.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model.tar.gz")
    demo.add_argument("--report", type=Path, default=Path("reports/demo.html"))
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="stay up for your own uploads and the review page until Ctrl-C",
    )
    demo.add_argument("--aws-port", type=int, default=5055, help="the AWS emulation's port")
    demo.add_argument("--model-port", type=int, default=8085, help="the model server's port")
    demo.add_argument("--review-port", type=int, default=8087, help="the review API's port")
    demo.add_argument("--workers", type=int, default=4, help="concurrent checker instances")
    demo.add_argument(
        "--fault-rate", type=float, default=0.0, help="fail this share of endpoint calls"
    )
    demo.add_argument("--log-dir", type=Path, default=Path("reports/local-stack"))
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from .. import demo
    from ..local.stack import StackOptions

    require_model(args.model)
    options = StackOptions(
        model=args.model,
        aws_port=args.aws_port,
        model_port=args.model_port,
        review_port=args.review_port,
        workers=args.workers,
        fault_rate=args.fault_rate,
        log_dir=args.log_dir,
    )
    return demo.run_demo(
        options,
        photos=args.photos,
        limit=args.limit,
        report=args.report,
        keep_running=args.keep_running,
    )
