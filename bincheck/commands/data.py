"""``bincheck data abid``: a data folder of photos from the Amazon Bin Image Dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import SHARED


def add_to(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="build data folders").add_subparsers(
        required=True, metavar="SOURCE"
    )
    abid = data.add_parser("abid", help="photos from the public Amazon Bin Image Dataset")
    abid.add_argument("--out", type=Path, required=True, help="the data folder to build")
    abid.add_argument(
        "--moderate",
        type=Path,
        default=SHARED / "data" / "abid" / "moderate_split",
        help="the official moderate split's folder (train.csv, val.csv): the default selection",
    )
    abid.add_argument("--counts", help="instead, a count range such as 0-10, read from metadata")
    abid.add_argument("--per-count", type=int, help="at most N photos of each count")
    abid.add_argument("--limit", type=int, help="at most N photos in all")
    abid.add_argument("--bucket", default="aft-vbi-pds")
    abid.add_argument("--endpoint-url", help="an S3-compatible endpoint instead of AWS")
    abid.add_argument("--workers", type=int, default=16)
    abid.add_argument("--seed", type=int, default=0)
    abid.set_defaults(run=build_abid)


def build_abid(args: argparse.Namespace) -> int:
    from training import abid

    client = abid.s3_client(args.endpoint_url)
    if args.counts:
        low, _, high = args.counts.partition("-")
        counts = range(int(low), int(high or low) + 1)
        if not args.per_count:
            raise ValueError("--counts needs --per-count (the quota of photos per count)")
        ids = abid.listed_ids(client, args.bucket)
        chosen = abid.scan_counts(client, args.bucket, ids, counts, args.per_count, args.workers)
    else:
        chosen = abid.sample(
            abid.moderate_split(args.moderate), args.per_count, args.limit, args.seed
        )
    report = abid.build(
        client, args.out, chosen, bucket=args.bucket, workers=args.workers, seed=args.seed
    )
    splits = abid.count_summary(args.out)
    print(
        f"{args.out}: {report.downloaded} downloaded, {report.kept} already there; "
        + ", ".join(f"{name} {n}" for name, n in sorted(splits.items()))
    )
    for problem in ("missing", "corrupt"):
        ids = getattr(report, problem)
        if ids:
            print(f"skipped {len(ids)} {problem}: {', '.join(ids[:20])}", file=sys.stderr)
    return 0
