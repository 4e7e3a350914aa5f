"""``bincheck ensemble``: several trained models served as one, calibrated and scored."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def add_to(commands: argparse._SubParsersAction) -> None:
    ensemble = commands.add_parser(
        "ensemble",
        help="serve several trained models as one (their mean probabilities): calibrated on "
        "their validation photos, scored on the validation and test photos",
    )
    ensemble.add_argument(
        "--members",
        type=Path,
        nargs="+",
        required=True,
        metavar="MODEL",
        help="two or more model.tar.gz of one backbone, validated on the same photos",
    )
    ensemble.add_argument(
        "--data",
        type=Path,
        required=True,
        help="the data folder the members were trained on: the temperature is fitted on its "
        "validation photos; the card's figures come from its validation and test photos",
    )
    ensemble.add_argument("--out", type=Path, required=True, help="the ensemble's model.tar.gz")
    ensemble.add_argument("--version", required=True, help="the ensemble's version")
    ensemble.add_argument(
        "--workers", type=int, default=0, help="processes decoding photos while the network runs"
    )
    ensemble.set_defaults(run=build_ensemble)


def build_ensemble(args: argparse.Namespace) -> int:
    from training.ensemble import ensemble_artifact
    from training.evaluate import summary

    for member in args.members:
        if not member.is_file():
            raise ValueError(f"no model at {member}: --members takes model.tar.gz files")
    words = [
        "bincheck", "ensemble", "--members", *map(str, args.members), "--data", str(args.data),
        "--out", str(args.out), "--version", args.version,
    ]  # fmt: skip
    command = " ".join(map(shlex.quote, words))
    report = ensemble_artifact(
        args.members,
        args.data,
        args.out,
        version=args.version,
        command=command,
        workers=args.workers,
    )
    calibration = report["calibration"]
    print(
        f"{report['model_version']}: {len(args.members)} members, temperature "
        f"{calibration['temperature']:.4f} fitted on {calibration['val']['photos']} validation "
        f"photos (ECE {calibration['val']['ece_before']:.4f} -> "
        f"{calibration['val']['ece_after']:.4f})"
    )
    print(summary(report["validation"]))
    print(summary(report["test"]))
    print(f"written to {report['out']}")
    return 0
