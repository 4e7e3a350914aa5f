"""Checkpoints that survive spot interruptions: written to a temp file, then renamed."""

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


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    path = directory / NAME
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
