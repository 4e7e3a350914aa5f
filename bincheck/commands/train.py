"""``bincheck train``: train the counting model here, or start the training pipeline on AWS.

argparse cannot hand ``--options`` after a subcommand on to another parser, so ``train``
parses its own arguments: ``cli.main`` asks :func:`takes_over` first and hands them to
:func:`run`. ``bincheck train ...`` goes to the training script's parser, ``bincheck train
start ...`` to :mod:`.train_start`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

NAME = "train"


def add_to(commands: argparse._SubParsersAction) -> None:
    # Listed for --help only: the arguments never reach bincheck's own parser.
    commands.add_parser(
        NAME,
        help="train the counting model here (bincheck train --help), or start the training "
        "pipeline on AWS (bincheck train start --help)",
    )


def takes_over(argv: Sequence[str]) -> bool:
    """Whether ``bincheck argv`` is a train command, for :func:`run` rather than argparse."""
    return list(argv[:1]) == [NAME]


def run(argv: Sequence[str]) -> int:
    """Run ``bincheck argv``, a command :func:`takes_over`."""
    arguments = list(argv[1:])
    if arguments[:1] == ["start"]:
        from .train_start import start

        return start(arguments[1:])
    return train_here(arguments)


def train_here(arguments: Sequence[str]) -> int:
    from training.train import get_args_parser
    from training.train import main as train

    parser = get_args_parser()
    parser.prog = f"bincheck {NAME}"
    train(parser.parse_args(arguments))
    return 0
