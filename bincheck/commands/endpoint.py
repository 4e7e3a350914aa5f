"""``bincheck endpoint load``: a counting endpoint's throughput and latency under load."""

from __future__ import annotations

import argparse
from pathlib import Path

from contract.names import ENDPOINT_NAME
from infra.config import BinCheckConfig

INPUT_MODES = ("bytes", "s3_uri")


def add_to(commands: argparse._SubParsersAction) -> None:
    endpoint = commands.add_parser("endpoint", help="measure a counting endpoint").add_subparsers(
        required=True, metavar="ACTION"
    )
    load = endpoint.add_parser(
        "load",
        help="drive it with real photos at set concurrencies: invocations/min, latency, errors",
        description=(
            "Calls the endpoint through the checker's own adapter and client, with photos "
            "of a data folder taken in turn, at each concurrency for --duration-s (or "
            "--max-calls); prints each step's calls, successful invocations per minute, "
            "p50/p95/p99 latency of the successful calls and errors by kind, then the "
            "capacity: the most invocations per minute of a step whose p99 stayed within "
            "--max-p99-ms. Exit 1 when no call succeeded."
        ),
    )
    load.add_argument(
        "--data", type=Path, required=True, help="a data folder: images/<id>.jpg + labels.csv"
    )
    load.add_argument("--endpoint", default=ENDPOINT_NAME, help="the SageMaker endpoint's name")
    load.add_argument(
        "--url",
        help="a local SageMaker Runtime instead of AWS's, e.g. bincheck serve's "
        "http://127.0.0.1:8085",
    )
    load.add_argument(
        "--input",
        choices=INPUT_MODES,
        default="bytes",
        help="bytes: send each photo (default); s3_uri: upload the photos to --s3-prefix "
        "first and send their S3 URIs",
    )
    load.add_argument("--s3-prefix", help="s3://BUCKET/PREFIX/, for --input s3_uri")
    load.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 4, 16],
        metavar="N",
        help="calls in flight; several make a ramp, one step each (default: 1 4 16)",
    )
    load.add_argument(
        "--duration-s", type=float, default=30.0, help="length of each step (default %(default)g)"
    )
    load.add_argument(
        "--max-calls",
        type=int,
        default=10_000,
        help="at most this many calls in a step (default %(default)d)",
    )
    load.add_argument(
        "--photos",
        type=int,
        default=200,
        help="how many distinct photos to take in turn (default %(default)d)",
    )
    load.add_argument(
        "--attempts",
        type=int,
        default=1,
        help="attempts per call, the first included (botocore's standard retries); the "
        "default 1 retries nothing, so every fault is counted",
    )
    load.add_argument(
        "--max-p99-ms",
        type=float,
        default=float(BinCheckConfig.latency_alarm_ms),
        help="the p99 a step must keep to count for the capacity (default: the endpoint "
        "latency alarm's, %(default)g)",
    )
    load.add_argument("--out", type=Path, help="write the figures to this JSON file")
    load.add_argument("--plot", type=Path, help="plot them to this PNG file (needs matplotlib)")
    load.set_defaults(run=run_load)


def validate(args: argparse.Namespace) -> None:
    """Every argument checked before the first call, so a long run cannot die at its end."""
    if any(level < 1 for level in args.concurrency):
        raise ValueError(f"--concurrency must be at least 1, got {args.concurrency}")
    for name in ("duration_s", "max_calls", "photos", "attempts", "max_p99_ms"):
        if getattr(args, name) <= 0:
            option = "--" + name.replace("_", "-")
            raise ValueError(f"{option} must be positive, got {getattr(args, name):g}")
    if args.input == "s3_uri" and not args.s3_prefix:
        raise ValueError("--input s3_uri needs --s3-prefix s3://BUCKET/PREFIX/ to upload to")
    if args.input == "bytes" and args.s3_prefix:
        raise ValueError("--s3-prefix is for --input s3_uri")
    if args.s3_prefix and not args.s3_prefix.startswith("s3://"):
        raise ValueError(f"--s3-prefix must look like s3://BUCKET/PREFIX/, got {args.s3_prefix}")
    if args.url and not args.url.startswith(("http://", "https://")):
        raise ValueError(f"--url must start with http:// or https://, got {args.url}")
    if args.plot:
        if args.plot.suffix.lower() != ".png":
            raise ValueError(f"--plot must name a .png file, got {args.plot}")
        try:
            import matplotlib  # noqa: F401
        except ImportError as error:
            raise ValueError("--plot needs matplotlib: pip install -e '.[training]'") from error


def run_load(args: argparse.Namespace) -> int:
    validate(args)
    from contract.times import format_timestamp, utc_now
    from lambdas.checker.adapters.endpoint import CountingEndpoint

    from ..load import driver, figures, report
    from .common import client

    ids = driver.photo_ids(args.data, args.photos)
    photos = driver.LocalPhotos(args.data, ids)
    targets = (
        driver.upload(client("s3"), args.s3_prefix, photos)
        if args.input == "s3_uri"
        else photos.targets
    )
    endpoint = CountingEndpoint(
        args.endpoint,
        driver.endpoint_client(url=args.url, attempts=args.attempts, pool=max(args.concurrency)),
        input_mode=args.input,
        photos=photos,
    )
    where = args.url or "AWS"
    print(
        f"loading {args.endpoint} at {where} with {len(ids)} photos ({args.input}), "
        f"{args.duration_s:g} s per step"
    )
    started_at = format_timestamp(utc_now())
    steps = []
    for level in args.concurrency:
        calls = driver.run_step(
            endpoint,
            targets,
            concurrency=level,
            duration_s=args.duration_s,
            max_calls=args.max_calls,
        )
        step = figures.summarize(
            concurrency=level,
            wall_s=calls.wall_s,
            latencies_ms=calls.latencies_ms,
            errors=calls.errors,
        )
        steps.append(step)
        print(report.step_line(step), flush=True)

    capacity = figures.capacity(steps, args.max_p99_ms)
    print()
    print(report.steps_table(steps))
    print(report.capacity_line(capacity, args.max_p99_ms))
    if args.out:
        run = report.run_json(
            endpoint=args.endpoint,
            url=args.url,
            input_mode=args.input,
            photos=len(ids),
            max_p99_ms=args.max_p99_ms,
            started_at=started_at,
            steps=steps,
            capacity=capacity,
        )
        report.write_json(args.out, run)
        print(f"figures: {args.out}")
    if args.plot:
        title = f"{args.endpoint} ({args.input} input, {where})"
        report.plot(args.plot, steps, title=title, max_p99_ms=args.max_p99_ms, capacity=capacity)
        print(f"plot: {args.plot}")
    return 0 if any(step.ok for step in steps) else 1
