"""``bincheck calibrate``: fit an artifact's temperature on its own validation photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import require_model


def add_to(commands: argparse._SubParsersAction) -> None:
    calibrate = commands.add_parser(
        "calibrate",
        help="fit a model's temperature on its validation photos: a calibrated copy",
    )
    calibrate.add_argument("--model", type=Path, required=True, help="model.tar.gz to calibrate")
    calibrate.add_argument(
        "--data",
        type=Path,
        required=True,
        help="the data folder the model was trained on: its validation photos, in the "
        "model's own split, are fitted on",
    )
    calibrate.add_argument("--out", type=Path, required=True, help="the calibrated model.tar.gz")
    calibrate.add_argument(
        "--version", help="the calibrated model's version (default: the model's + -calibrated)"
    )
    calibrate.add_argument(
        "--workers", type=int, default=0, help="processes decoding photos while the network runs"
    )
    calibrate.set_defaults(run=calibrate_model)


def calibrate_model(args: argparse.Namespace) -> int:
    from training.calibration import calibrate_artifact

    require_model(args.model)
    report = calibrate_artifact(
        args.model, args.data, args.out, version=args.version, workers=args.workers
    )
    val = report["val"]
    print(
        f"{report['model_version']}: temperature {report['temperature']:.4f} "
        f"(was {report['temperature_before']:g}), fitted on {val['photos']} validation photos"
        + (" at the end of the search range" if report.get("at_search_bound") else "")
    )
    print(
        f"  validation ECE {val['ece_before']:.4f} -> {val['ece_after']:.4f}  "
        f"NLL {val['nll_before']:.4f} -> {val['nll_after']:.4f}"
    )
    print(f"  written to {report['out']}")
    return 0
