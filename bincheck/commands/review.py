"""``bincheck review list|show|settle|notify|export``: the review queue from the command line,
with the review API's own rules (``lambdas/review``), and reviewed photos for training.

The reviewer is the caller's AWS identity (its ARN), as the API's is the signed-in user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from contract.review import DEFAULT_REVIEW_STATUSES, MAX_NOTE_CHARS, Resolution

from ..console import format_table
from .checks import _since
from .common import DEFAULTS, client

_COLUMNS = ("id", "captured_at", "bin_id", "status", "expected", "counted", "p")
BAR_WIDTH = 30


def add_to(commands: argparse._SubParsersAction) -> None:
    review = commands.add_parser(
        "review", help="checks waiting for a person: list, show, settle; reviewed photos out"
    ).add_subparsers(required=True, metavar="ACTION")

    listing = review.add_parser("list", help="pending checks, oldest capture first")
    listing.add_argument("--bin", dest="bin_id", help="only this bin")
    listing.add_argument("--limit", type=int, default=50, help="at most N (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = review.add_parser("show", help="one check: the model's distribution, a photo link")
    show.add_argument("id", help="the check's id, as `review list` prints it")
    show.add_argument("--json", action="store_true")
    settle = review.add_parser("settle", help="record what a person counted (once per check)")
    settle.add_argument("id", help="the check's id, as `review list` prints it")
    settle.add_argument("count", type=int, help="the items counted in the bin")
    settle.add_argument(
        "--resolution",
        required=True,
        choices=list(Resolution),
        help="CONFIRMED: the bin does not hold the expected quantity; FALSE_ALARM: it does",
    )
    settle.add_argument("--note", help=f"at most {MAX_NOTE_CHARS} characters")
    settle.add_argument(
        "--update-bins",
        action=argparse.BooleanOptionalAction,
        default=os.getenv("UPDATE_BINS", "false").lower() in ("true", "1", "yes", "on"),
        help="set the bin's expected quantity to the count, if the bin has not changed since "
        "the photo (default: UPDATE_BINS, else off)",
    )
    notify = review.add_parser("notify", help="publish a settled review's message again")
    notify.add_argument("id")
    export = review.add_parser(
        "export", help="settled checks as a data folder (photos + labels.csv) for training"
    )
    export.add_argument("--out", required=True, help="a folder, or s3://BUCKET/PREFIX")
    export.add_argument(
        "--since", type=_since, help="reviewed at or after: ISO 8601, or relative: 30m, 2h, 7d"
    )
    export.add_argument(
        "--statuses",
        default=os.getenv("REVIEW_STATUSES", ",".join(sorted(DEFAULT_REVIEW_STATUSES))),
        help="the statuses checks wait for review in (default: REVIEW_STATUSES, else "
        "MISMATCH,UNCERTAIN)",
    )
    for command, run in (
        (listing, list_pending),
        (show, show_check),
        (settle, settle_check),
        (notify, notify_check),
        (export, export_reviewed),
    ):
        command.add_argument("--table", default=os.getenv("CHECKS_TABLE", DEFAULTS.checks_table))
        command.set_defaults(run=_refusals_as_errors(run))
    for command in (settle, notify):
        command.add_argument("--bins-table", default=os.getenv("BINS_TABLE", DEFAULTS.bins_table))
        command.add_argument(
            "--topic-arn",
            default=os.getenv("ALERTS_TOPIC_ARN"),
            help=f"the alerts topic (default: ALERTS_TOPIC_ARN, else {DEFAULTS.alerts_topic} "
            "in your account and region)",
        )


def list_pending(args: argparse.Namespace) -> int:
    from lambdas.review.inputs import MAX_PAGE_SIZE, Listing

    service = _service(args)
    records, after = [], None
    while len(records) < args.limit:
        wanted = min(MAX_PAGE_SIZE, args.limit - len(records))
        page = service.pending(Listing(bin_id=args.bin_id, after=after, limit=wanted))
        records += page.checks
        after = page.next
        if after is None:
            break
    views = [_view(record) for record in records]
    if args.json:
        for view in views:
            print(json.dumps(view))
        return 0
    rows = [
        (
            v["id"],
            v["captured_at"],
            v["bin_id"],
            v["status"],
            str(v.get("expected_quantity", "")),
            str(v.get("predicted_count", "")),
            "" if v.get("probability") is None else f"{v['probability']:.2f}",
        )
        for v in views
    ]
    print(format_table(_COLUMNS, rows))
    print(f"{len(rows)} pending checks" + (" (more: raise --limit)" if after else ""))
    return 0


def show_check(args: argparse.Namespace) -> int:
    from lambdas.review.inputs import parse_check_ref

    service = _service(args)
    record = service.get(*parse_check_ref(args.id))
    view = _view(record) | {"photo_url": service.photo_url(record)}
    if args.json:
        print(json.dumps(view))
        return 0
    skip = {"probabilities", "max_count", "photo_url"}
    width = max(len(name) for name in view)
    for name, value in view.items():
        if name not in skip and value is not None:
            print(f"{name:<{width}}  {value}")
    if record.probabilities:
        print("\nthe model's count distribution")
        top = len(record.probabilities) - 1
        for count, p in enumerate(record.probabilities):
            label = f"{count}+" if count == top else str(count)
            expected = record.expected_quantity
            mark = " <- expected" if expected is not None and count == min(expected, top) else ""
            print(f"  {label:>4}  {'#' * round(p * BAR_WIDTH):<{BAR_WIDTH}} {p:.2f}{mark}")
    print(f"\nphoto (valid {service.photo_url_ttl_s} s): {view['photo_url']}")
    return 0


def settle_check(args: argparse.Namespace) -> int:
    from lambdas.review.inputs import answer_from_fields, parse_check_ref

    answer = answer_from_fields(
        {"reviewed_count": args.count, "resolution": args.resolution, "note": args.note}
    )
    service = _service(args)
    settlement = service.settle(*parse_check_ref(args.id), answer, _caller())
    check = settlement.check
    print(
        f"settled: bin {check.bin_id} holds {check.reviewed_count} (expected "
        f"{check.expected_quantity}), {check.resolution}, by {check.reviewer} at "
        f"{check.reviewed_at}"
    )
    print(settlement.bin_update_detail)
    return 0


def notify_check(args: argparse.Namespace) -> int:
    from lambdas.review.inputs import parse_check_ref

    record = _service(args).notify(*parse_check_ref(args.id))
    print(f"published the REVIEWED message of check {record.check_id} of bin {record.bin_id}")
    return 0


def export_reviewed(args: argparse.Namespace) -> int:
    from contract.decision import Status
    from lambdas.checker.adapters.checks import ChecksTable

    from ..review_export import export, settled_checks

    names = [name.strip() for name in args.statuses.split(",") if name.strip()]
    unknown = sorted(set(names) - set(Status))
    if unknown:
        raise ValueError(f"--statuses: unknown statuses {unknown}")
    table = ChecksTable(args.table, client("dynamodb"))
    records = list(settled_checks(table, [Status(name) for name in names], since=args.since))
    done = export(records, args.out, client("s3"))
    exported = [r for r in records if r.image_uri not in done.missing]
    confirmed = sum(r.resolution is Resolution.CONFIRMED for r in exported)
    print(
        f"exported {done.rows} reviewed photos to {args.out} ({confirmed} confirmed, "
        f"{done.rows - confirmed} false alarms); train with --extra-train {args.out}"
    )
    for uri in done.missing:
        print(f"  skipped {uri}: the photo is no longer in the bucket", file=sys.stderr)
    return 0


def _service(args: argparse.Namespace) -> Any:
    from lambdas.review.adapters.notices import NoticeTopic
    from lambdas.review.adapters.photos import PhotoLinks
    from lambdas.review.adapters.store import ReviewStore
    from lambdas.review.service import ReviewService

    bins_table = getattr(args, "bins_table", DEFAULTS.bins_table)
    return ReviewService(
        store=ReviewStore(
            checks_table=args.table, bins_table=bins_table, client=client("dynamodb")
        ),
        photos=PhotoLinks(_s3_sigv4()),
        notices=NoticeTopic(_topic_arn(args), client("sns")),
        update_bins=getattr(args, "update_bins", False),
    )


def _topic_arn(args: argparse.Namespace) -> str:
    if getattr(args, "topic_arn", None):
        return args.topic_arn
    if not hasattr(args, "topic_arn"):
        return ""  # this action publishes nothing
    import boto3

    account = client("sts").get_caller_identity()["Account"]
    region = boto3.session.Session().region_name
    return f"arn:aws:sns:{region}:{account}:{DEFAULTS.alerts_topic}"


def _s3_sigv4() -> Any:
    """Presigned links signed as the review API signs them (SigV4)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4"))


def _caller() -> str:
    """The reviewer: whoever the AWS credentials belong to."""
    return client("sts").get_caller_identity()["Arn"]


def _view(record: Any) -> dict[str, Any]:
    from lambdas.review.views import check_view

    return check_view(record)


def _refusals_as_errors(run: Any) -> Any:
    """The review rules refuse with ``ReviewError``: an error line and exit 1, like the API's
    4xx."""

    def guarded(args: argparse.Namespace) -> int:
        from lambdas.review.errors import ReviewError

        try:
            return run(args)
        except ReviewError as refusal:
            print(f"bincheck: error: {refusal.message}", file=sys.stderr)
            return 1

    return guarded
