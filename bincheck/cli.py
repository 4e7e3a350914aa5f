"""bincheck: operator commands for the bin inventory checker.

Table names come from ``--table``, else the environment (``BINS_TABLE``, ``CHECKS_TABLE``),
else the local stack's defaults. ``AWS_ENDPOINT_URL`` points every command at a local
emulation instead of AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError

from contract.decision import Status
from contract.times import format_timestamp, parse_timestamp, utc_now

from .local.resources import ResourceNames

_DEFAULTS = ResourceNames()
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_MODEL = REPO / "model" / "default" / "model.tar.gz"
_RELATIVE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:2] == ["train", "start"]:
            from .pipeline import main as start_pipeline

            return start_pipeline(argv[2:])
        if argv[:1] == ["train"]:
            # argparse cannot hand "--options" after a subcommand on to another parser.
            return _train(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (ValueError, OSError, BotoCoreError) as error:  # bad input, or no AWS access
        print(f"bincheck: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bincheck", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    bins = commands.add_parser("bins", help="the bins table").add_subparsers(
        required=True, metavar="ACTION"
    )
    load = bins.add_parser("load", help="load expected quantities from a CSV file")
    load.add_argument("file", type=Path, help="CSV: bin_id,expected_quantity[,updated_at]")
    load.add_argument("--table", default=os.getenv("BINS_TABLE", _DEFAULTS.bins_table))
    load.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    load.set_defaults(run=_bins_load)

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
    listing.add_argument("--table", default=os.getenv("CHECKS_TABLE", _DEFAULTS.checks_table))
    listing.set_defaults(run=_checks_list)

    dlq = commands.add_parser(
        "dlq", help="photo events the checker gave up on (the dead-letter queue)"
    ).add_subparsers(required=True, metavar="ACTION")
    for action, help_text in (
        ("show", "how many messages wait in the DLQ, and which photos the first ones name"),
        ("redrive", "send the DLQ's messages back to the photo events queue"),
    ):
        command = dlq.add_parser(action, help=help_text)
        command.add_argument(
            "--dlq",
            default=os.getenv("PHOTO_EVENTS_DLQ", _DEFAULTS.dead_letter_queue),
            help="the DLQ's name or URL (the stack's PhotoEventsDLQ output)",
        )
        command.add_argument("--limit", type=int, help="at most N messages")
        if action == "redrive":
            command.add_argument(
                "--to", help="the queue's name or URL (default: the queue whose DLQ it is)"
            )
        command.set_defaults(run=_dlq_show if action == "show" else _dlq_redrive)

    serve = commands.add_parser(
        "serve", help="serve a model over HTTP like the SageMaker container (/ping, /invocations)"
    )
    serve.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model.tar.gz")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-batch", type=int, default=32, help="images per network call")
    serve.add_argument(
        "--batch-window-ms", type=float, default=2.0, help="how long a batch waits for company"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="batches in the network at once (default: one per core on a CPU, one on a GPU)",
    )
    serve.add_argument(
        "--plain", action="store_true", help="full decode and float32 (the reference path)"
    )
    serve.add_argument(
        "--endpoint-name",
        default=_DEFAULTS.endpoint,
        help="answer InvokeEndpoint for this name at /endpoints/NAME/invocations",
    )
    serve.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fail this share of InvokeEndpoint calls on purpose (resilience tests)",
    )
    serve.set_defaults(run=_serve)

    # Listed for --help; main() hands "train ..." straight to the training script's parser.
    commands.add_parser(
        "train",
        help="train the counting model here (bincheck train --help), or start the training "
        "pipeline on AWS (bincheck train start --help)",
    )

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
    evaluate.add_argument("--match-threshold", type=float, default=0.5)
    evaluate.add_argument("--mismatch-threshold", type=float, default=0.1)
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
    evaluate.set_defaults(run=_evaluate)

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
    pull.set_defaults(run=_model_pull)

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
    abid.set_defaults(run=_data_abid)

    demo = commands.add_parser(
        "demo", help="run the whole system locally on real photos (moto, model server, checker)"
    )
    demo.add_argument("--photos", type=Path, help="a data folder (images/ + labels.csv)")
    demo.add_argument("--limit", type=int, default=60, help="at most N photos (default 60)")
    demo.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model.tar.gz")
    demo.add_argument("--report", type=Path, default=Path("reports/demo.html"))
    demo.add_argument(
        "--keep-running", action="store_true", help="stay up for your own uploads until Ctrl-C"
    )
    demo.add_argument("--aws-port", type=int, default=5055, help="the AWS emulation's port")
    demo.add_argument("--model-port", type=int, default=8085, help="the model server's port")
    demo.add_argument("--workers", type=int, default=4, help="concurrent checker instances")
    demo.add_argument(
        "--fault-rate", type=float, default=0.0, help="fail this share of endpoint calls"
    )
    demo.add_argument("--log-dir", type=Path, default=Path("reports/local-stack"))
    demo.set_defaults(run=_demo)
    return parser


def _since(text: str) -> str:
    match = _RELATIVE.fullmatch(text.strip())
    if match:
        moment = utc_now() - timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        moment = parse_timestamp(text)
    return format_timestamp(moment)


def _bins_load(args: argparse.Namespace) -> int:
    from lambdas.checker.adapters.bins import BinsTable

    from .bins_csv import parse_bins_csv

    with args.file.open(newline="", encoding="utf-8-sig") as lines:
        parsed = parse_bins_csv(lines)
    for row in parsed.rejected:
        print(f"rejected line {row.line}: {row.reason}: {row.text}", file=sys.stderr)
    if args.dry_run:
        written = 0
        print(f"{len(parsed.bins)} valid bins, {len(parsed.rejected)} rejected rows (dry run)")
    else:
        written = BinsTable(args.table, _client("dynamodb")).put_many(parsed.bins)
        print(f"loaded {written} bins into {args.table}; rejected {len(parsed.rejected)} rows")
    return 1 if parsed.rejected else 0


def _checks_list(args: argparse.Namespace) -> int:
    from lambdas.checker.adapters.checks import ChecksTable

    table = ChecksTable(args.table, _client("dynamodb"))
    records = table.query(bin_id=args.bin_id, status=args.status, since=args.since)
    newest = sorted(records, key=lambda r: r.check_id)[-args.limit :] if args.limit > 0 else []
    if args.json:
        for record in newest:
            print(json.dumps(record.to_dict()))
        return 0
    columns = ("captured_at", "bin_id", "capture_id", "status", "expected", "counted", "p")
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
    print(format_table(columns, rows))
    print(f"{len(rows)} checks")
    return 0


def _serve(args: argparse.Namespace) -> int:
    _require_model(args.model)
    from bincheck.inference_server import serve

    from .local.ports import ensure_free

    ensure_free(args.host, args.port, "--port")
    serve(
        args.model,
        host=args.host,
        port=args.port,
        fast=not args.plain,
        max_batch=args.max_batch,
        window_ms=args.batch_window_ms,
        endpoint_name=args.endpoint_name,
        fault_rate=args.fault_rate,
        workers=args.workers,
    )
    return 0


def _dlq_show(args: argparse.Namespace) -> int:
    from . import dlq

    sqs = _client("sqs")
    url = dlq.queue_url(sqs, args.dlq)
    print(f"{dlq.depth(sqs, url)} messages in {url}")
    for line in dlq.peek(sqs, url, limit=args.limit or 20):
        print(f"  {line}")
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import dlq

    sqs = _client("sqs")
    url = dlq.queue_url(sqs, args.dlq)
    to = dlq.queue_url(sqs, args.to) if args.to else dlq.source_queue(sqs, url)
    with tqdm(total=args.limit or dlq.depth(sqs, url), desc="redrive", unit="message") as bar:
        moved = dlq.redrive(sqs, url, to, limit=args.limit, on_batch=bar.update)
    print(f"moved {moved} messages from {url} to {to}")
    return 0


def _train(arguments: list[str]) -> int:
    from training.train import get_args_parser
    from training.train import main as train

    parser = get_args_parser()
    parser.prog = "bincheck train"
    train(parser.parse_args(arguments))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from contract.decision import Thresholds
    from training.evaluate import evaluate_folder, summary, write_outputs

    _require_model(args.model)
    if args.against:
        _require_model(args.against)
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


def _require_model(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"no model at {path}: pass --model PATH/model.tar.gz")


def _model_pull(args: argparse.Namespace) -> int:
    from .production import pull

    if not args.record:
        raise ValueError("no record: pass --record NAME (the stack's ProductionModelRecord)")
    record = pull(_client("ssm"), _client("s3"), args.record, args.out)
    print(f"{args.out}: {record['version']}, from {record['model_data']}")
    print(
        f'to keep serving it through the next deploy, set "model_artifact": "{args.out}" '
        "in the bincheck settings (cdk.json's context, or -c bincheck=...)"
    )
    return 0


def _data_abid(args: argparse.Namespace) -> int:
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


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .local.stack import StackOptions

    _require_model(args.model)
    options = StackOptions(
        model=args.model,
        aws_port=args.aws_port,
        model_port=args.model_port,
        workers=args.workers,
        fault_rate=args.fault_rate,
        log_dir=args.log_dir,
    )
    return run_demo(
        options,
        photos=args.photos,
        limit=args.limit,
        report=args.report,
        keep_running=args.keep_running,
    )


def _blank(value: object) -> str:
    return "" if value is None else str(value)


def _client(service: str):
    import boto3

    return boto3.client(service)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    lines = [columns, *rows]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


if __name__ == "__main__":
    sys.exit(main())
