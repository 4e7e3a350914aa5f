"""Recipes as train.py options, and a run of one: what the benchmarks that train models
(``benchmarks/learning_curve.py``, ``benchmarks/cross_validation.py``) train."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

# The default model's recipe (model/default's card), without its data and outputs. Its
# --ema-decay 0.99 is left to train.py's --ema-epochs, whose default spans the same 2.3
# epochs on 1,425 photos and keeps spanning them on fewer photos, which have fewer steps.
DEFAULT = (
    "--height 240 --width 320 --epochs 15 --loss ordinal --decoding median --select accuracy "
    "--patience 6"
)
# The published pipelines' recipe (docs/model.md's baseline): frozen backbone, 224 px, one
# linear layer, plain cross-entropy, its learning rate chosen on validation.
BASELINE = (
    "--height 224 --width 224 --epochs 10 --loss ce --class-balance 0 --augment 0 --dropout 0 "
    "--drop-path 0 --freeze-backbone --weight-decay 0 --lr 1e-3 --patience 100 "
    "--decoding argmax --ema-decay 0"
)


def train(data: Path, weights: str, out: Path, version: str, recipe: str) -> Path:
    """``out/model.tar.gz``, trained with ``recipe`` by a plain ``python -m training.train``
    (printed, so it can be repeated by hand), unless a finished run left it there."""
    artifact = out / "model.tar.gz"
    if not artifact.is_file():
        command = [
            sys.executable, "-m", "training.train", "--data", str(data), "--weights", weights,
            "--output-dir", str(out), "--version", version, *shlex.split(recipe),
        ]  # fmt: skip
        print("$", shlex.join(command), flush=True)
        subprocess.run(command, check=True)  # noqa: S603 (this interpreter, our module)
    return artifact
