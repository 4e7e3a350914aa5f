"""``bincheck evaluate``: a model's figures and alert rates on a data folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from contract.decision import Thresholds

from .common import DEFAULT_MODEL, require_model


def add_to(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="figures and alert rates of a model on photos")
    evaluate.add_argument("--data", type=Path, required=True, help="a data folder")
    evaluate.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model.tar.gz")
    evaluate.add_argument(
        "--subset",
        choices=["test", "val", "train", "all"],
        default="test",
        help="the model's own split of the folder (default test), or all photos",
    )
    evaluate.add_argument("--out", type=Path, help="the report as JSON")
    evaluate.add_argument("--predictions", type=Path, help="one JSON line per photo")
    evaluate.add_argument("--plot", type=Path, help="confusion matrix PNG")
    evaluate.add_argument(
        "--match-threshold", type=float, default=Thresholds.match, help="default: the checker's"
    )
    evaluate.add_argument(
        "--mismatch-threshold",
        type=float,
        default=Thresholds.mismatch,
        help="default: the checker's",
    )
    evaluate.add_argument("--target-precision", type=float, default=0.9)
    evaluate.add_argument(
        "--wrong-rate", type=float, default=0.05, help="share of wrong expected quantities"
    )
    evaluate.add_argument(
        "--against",
        type=Path,
        help="a second model.tar.gz scored on the same photos: the differences, with intervals",
    )
    evaluate.add_argument("--fast", action="store_true", help="the serving fast path")
    evaluate.add_argument(
        "--decoding", choices=["argmax", "median"], help="override the model card's decoding"
    )
    evaluate.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes decoding photos while the network runs (worth it when a GPU runs it)",
    )
    evaluate.set_defaults(run=evaluate_model)


def evaluate_model(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_folder, summary, write_outputs

    require_model(args.model)
    if args.against:
        require_model(args.against)
    report, rows = evaluate_folder(
        args.model,
        args.data,
        subset=args.subset,
        thresholds=Thresholds(match=args.match_threshold, mismatch=args.mismatch_threshold),
        target_precision=args.target_precision,
        wrong_rate=args.wrong_rate,
        fast=args.fast,
        decoding=args.decoding,
        workers=args.workers,
        against=args.against,
    )
    write_outputs(report, rows, out=args.out, predictions=args.predictions, plot=args.plot)
    print(summary(report))
    return 0
