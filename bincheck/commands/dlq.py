"""``bincheck dlq show`` and ``bincheck dlq redrive``: photo events the checker gave up on."""

from __future__ import annotations

import argparse
import os

from .common import DEFAULTS, client


def add_to(commands: argparse._SubParsersAction) -> None:
    dlq = commands.add_parser(
        "dlq", help="photo events the checker gave up on (the dead-letter queue)"
    ).add_subparsers(required=True, metavar="ACTION")
    for action, help_text, run in (
        ("show", "how many messages wait in the DLQ, and which photos the first ones name", show),
        ("redrive", "send the DLQ's messages back to the photo events queue", redrive),
    ):
        command = dlq.add_parser(action, help=help_text)
        command.add_argument(
            "--dlq",
            default=os.getenv("PHOTO_EVENTS_DLQ", DEFAULTS.dead_letter_queue),
            help="the DLQ's name or URL (the stack's PhotoEventsDLQ output)",
        )
        command.add_argument("--limit", type=int, help="at most N messages")
        if action == "redrive":
            command.add_argument(
                "--to", help="the queue's name or URL (default: the queue whose DLQ it is)"
            )
        command.set_defaults(run=run)


def show(args: argparse.Namespace) -> int:
    from .. import dlq

    sqs = client("sqs")
    url = dlq.queue_url(sqs, args.dlq)
    print(f"{dlq.depth(sqs, url)} messages in {url}")
    for line in dlq.peek(sqs, url, limit=args.limit or 20):
        print(f"  {line}")
    return 0


def redrive(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import dlq

    sqs = client("sqs")
    url = dlq.queue_url(sqs, args.dlq)
    to = dlq.queue_url(sqs, args.to) if args.to else dlq.source_queue(sqs, url)
    with tqdm(total=args.limit or dlq.depth(sqs, url), desc="redrive", unit="message") as bar:
        moved = dlq.redrive(sqs, url, to, limit=args.limit, on_batch=bar.update)
    print(f"moved {moved} messages from {url} to {to}")
    return 0
