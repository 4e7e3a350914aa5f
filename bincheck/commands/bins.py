"""``bincheck bins load``: expected quantities from a CSV file into the bins table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import DEFAULTS, client


def add_to(commands: argparse._SubParsersAction) -> None:
    bins = commands.add_parser("bins", help="the bins table").add_subparsers(
        required=True, metavar="ACTION"
    )
    load = bins.add_parser("load", help="load expected quantities from a CSV file")
    load.add_argument("file", type=Path, help="CSV: bin_id,expected_quantity[,updated_at]")
    load.add_argument("--table", default=os.getenv("BINS_TABLE", DEFAULTS.bins_table))
    load.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    load.set_defaults(run=load_bins)


def load_bins(args: argparse.Namespace) -> int:
    from lambdas.checker.adapters.bins import BinsTable

    from ..bins_csv import parse_bins_csv

    with args.file.open(newline="", encoding="utf-8-sig") as lines:
        parsed = parse_bins_csv(lines)
    for row in parsed.rejected:
        print(f"rejected line {row.line}: {row.reason}: {row.text}", file=sys.stderr)
    if args.dry_run:
        written = 0
        print(f"{len(parsed.bins)} valid bins, {len(parsed.rejected)} rejected rows (dry run)")
    else:
        written = BinsTable(args.table, client("dynamodb")).put_many(parsed.bins)
        print(f"loaded {written} bins into {args.table}; rejected {len(parsed.rejected)} rows")
    return 1 if parsed.rejected else 0
