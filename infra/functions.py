"""Each Lambda function's code asset: its own folder under ``lambdas/``, plus the shared
contract (``contract/``) where it imports it, and nothing else.

Staged at synthesis (plain file copies: no bundling, so no Docker) into
``build/functions/<name>-<content hash>/``, with the function's package and the contract
side by side at the root, as the handler imports them (``checker.handler``, ``contract``).
Named by content, so two synthesises at once (the tests' and ``make synth``) cannot stage
one's files under the other's name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from .config import REPO

BUILD = REPO / "build" / "functions"
STALE_S = 3600  # older stagings of other contents are removed after an hour
# function -> the repository folders its asset holds, each at the asset's root
SOURCES: dict[str, tuple[str, ...]] = {
    "checker": ("lambdas/checker", "contract"),
    "retraining": ("lambdas/retraining",),
}


def source_files(name: str) -> dict[str, bytes]:
    """The asset's files by path: every ``.py`` of the function's folders."""
    files: dict[str, bytes] = {}
    for folder in SOURCES[name]:
        root = REPO / folder
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[f"{root.name}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def stage(name: str, folder: Path = BUILD) -> Path:
    """Writes ``folder/<name>-<hash>/`` (unless it is there) and returns it."""
    files = source_files(name)
    digest = hashlib.sha256()
    for path, data in sorted(files.items()):
        digest.update(f"{path}\0{len(data)}\0".encode())
        digest.update(data)
    target = folder / f"{name}-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        temporary = folder / f".{target.name}.{os.getpid()}.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        for path, data in files.items():
            (temporary / path).parent.mkdir(parents=True, exist_ok=True)
            (temporary / path).write_bytes(data)
        try:
            temporary.rename(target)
        except OSError:  # staged meanwhile by another synthesis: the same contents
            shutil.rmtree(temporary, ignore_errors=True)
    for old in folder.glob(f"{name}-*"):
        if old != target and old.stat().st_mtime < time.time() - STALE_S:
            shutil.rmtree(old, ignore_errors=True)
    return target


def function_code(name: str) -> lambda_.Code:
    """The function's asset, staged from this checkout."""
    return lambda_.Code.from_asset(str(stage(name)))
