"""``bincheck checks list``: check records, filtered by bin, status and capture time."""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import timedelta

from contract.decision import Status
from contract.times import format_timestamp, parse_timestamp, utc_now

from ..console import format_table
from .common import DEFAULTS, client

_RELATIVE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_COLUMNS = ("captured_at", "bin_id", "capture_id", "status", "expected", "counted", "p")


def add_to(commands: argparse._SubParsersAction) -> None:
    checks = commands.add_parser("checks", help="the checks table").add_subparsers(
        required=True, metavar="ACTION"
    )
    listing = checks.add_parser("list", help="list check records, oldest capture first")
    listing.add_argument("--bin", dest="bin_id", help="only this bin")
    listing.add_argument("--status", type=Status, choices=list(Status), help="only this status")
    listing.add_argument(
        "--since", type=_since, help="captured at or after: ISO 8601, or relative: 30m, 2h, 7d"
    )
    listing.add_argument("--limit", type=int, default=100, help="show the newest N (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--table", default=os.getenv("CHECKS_TABLE", DEFAULTS.checks_table))
    listing.set_defaults(run=list_checks)


# argparse names it in its message on a bad value: "invalid _since value".
def _since(text: str) -> str:
    """An ISO 8601 timestamp, or ``30m``, ``2h``, ``7d`` ago, as the checks table writes it."""
    match = _RELATIVE.fullmatch(text.strip())
    if match:
        moment = utc_now() - timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        moment = parse_timestamp(text)
    return format_timestamp(moment)


def list_checks(args: argparse.Namespace) -> int:
    from lambdas.checker.adapters.checks import ChecksTable

    table = ChecksTable(args.table, client("dynamodb"))
    records = table.query(bin_id=args.bin_id, status=args.status, since=args.since)
    newest = sorted(records, key=lambda r: r.check_id)[-args.limit :] if args.limit > 0 else []
    if args.json:
        for record in newest:
            print(json.dumps(record.to_dict()))
        return 0
    rows = [
        (
            r.captured_at,
            r.bin_id,
            r.capture_id,
            str(r.status),
            _blank(r.expected_quantity),
            _blank(r.predicted_count),
            "" if r.probability is None else f"{r.probability:.2f}",
        )
        for r in newest
    ]
    print(format_table(_COLUMNS, rows))
    print(f"{len(rows)} checks")
    return 0


def _blank(value: object) -> str:
    return "" if value is None else str(value)
