"""The training pipeline's entry point: SageMaker runs ``python sagemaker_entry.py --name
value ...`` from the root of the uploaded code (``infra/pipeline/code.py`` puts this file
there, beside the ``training`` and ``model`` packages).

SageMaker's training toolkit passes every hyperparameter as ``--name value`` except its own
``sagemaker_*`` ones. A tuning job adds one more of its own, ``_tuning_objective_metric``:
it is dropped here, so that train.py's parser still refuses any other unknown option.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

RESERVED = ("--_tuning_objective_metric",)


def strip_reserved(argv: Sequence[str]) -> list[str]:
    """``argv`` without SageMaker's reserved options, ``--name value`` or ``--name=value``."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in RESERVED:
            skip = True
        elif not arg.startswith(tuple(f"{name}=" for name in RESERVED)):
            kept.append(arg)
    return kept


def main(argv: Sequence[str]) -> None:
    from training.train import get_args_parser
    from training.train import main as train

    train(get_args_parser().parse_args(strip_reserved(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
