"""bincheck: operator commands for the bin inventory checker.

Table names come from ``--table``, else the environment (``BINS_TABLE``, ``CHECKS_TABLE``),
else the local stack's defaults. ``AWS_ENDPOINT_URL`` points every command at a local
emulation instead of AWS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError

from .commands import (
    bins,
    calibrate,
    checks,
    cost,
    data,
    demo,
    dlq,
    endpoint,
    ensemble,
    evaluate,
    model,
    review,
    serve,
    train,
)

# In the order ``bincheck --help`` lists them.
GROUPS = (
    bins, checks, review, dlq, serve, endpoint, train, evaluate, calibrate, ensemble, model, data,
    demo, cost,
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if train.takes_over(argv):
            return train.run(argv)
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (ValueError, OSError, BotoCoreError) as error:  # bad input, or no AWS access
        print(f"bincheck: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bincheck", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_to(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
