"""Checkpoints that survive spot interruptions: written to a temp file, then renamed.

Each checkpoint names the SageMaker training job that wrote it (``TRAINING_JOB_NAME``): a
job resumes only its own. A spot restart keeps the job's name; a tuning trial that finds
another trial's checkpoint in a shared checkpoint folder starts fresh instead of resuming
someone else's hyperparameters.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

NAME = "checkpoint.pt"


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / NAME
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as tmp:
        torch.save(state, tmp)
        tmp.flush()
        os.fsync(tmp.fileno())
    Path(tmp.name).replace(target)  # atomic: a reader sees the old file or the new one
    return target


def current_job() -> str | None:
    return os.environ.get("TRAINING_JOB_NAME")


def load_checkpoint(directory: Path, job: str | None = None) -> dict[str, Any] | None:
    """The checkpoint in ``directory``, unless it is missing or another job's."""
    path = directory / NAME
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if job is not None and saved.get("job") not in (None, job):
        print(f"ignoring {path}: written by job {saved['job']}, not {job}", flush=True)
        return None
    return saved
