"""The endpoint's model artifact: the configured model's weights and card, with this
checkout's handler code.

The container runs the artifact's ``code/``, not the repository's ``model/``. A committed
artifact (``model/default``) carries the code of the day it was packed; rebuilding its
``code/`` at synthesis deploys every change to ``model/`` with the model, without
committing its 13 MB of weights again. The build is byte for byte the same from the same
contents (``infra/archives.py``), and the asset's hash is of the contents, not of the gzip
stream, so a deployment from another machine does not replace the endpoint's model. Each
build is named by its contents, so two synthesises of different models at once (the tests'
and ``make synth``) cannot stage one's file under the other's hash.
"""

from __future__ import annotations

import hashlib
import tarfile
import time
from pathlib import Path

from model.layout import CARD, CODE, LIB, WEIGHTS, code_files

from .archives import write_targz
from .config import REPO

BUILD = REPO / "build"
STALE_S = 3600  # older builds of other contents are removed after an hour


def serving_files(source: Path) -> dict[str, bytes]:
    """``source``'s files but its ``code/``, and ``code/`` from this checkout."""
    with tarfile.open(source, "r:gz") as tar:
        kept = {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile() and not member.name.startswith(CODE)
        }
    missing = sorted({WEIGHTS, CARD} - kept.keys())
    if missing:
        raise ValueError(f"{source} is not a model artifact: no {', '.join(missing)}")
    if not any(name.startswith(LIB) for name in kept):
        # This checkout's code/ imports timm from lib/ and pip-installs nothing.
        raise ValueError(
            f"{source} carries no {LIB} (packed before timm travelled in the artifact): "
            f'repack it first: .venv/bin/python -c "from model.artifact import repack; '
            f"repack('{source}')\""
        )
    return {**kept, **code_files()}


def content_hash(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def build_serving_artifact(source: Path, folder: Path = BUILD) -> tuple[Path, str]:
    """Writes ``folder/model-<hash>.tar.gz`` (unless it is there): its path and the
    content hash. Builds of other contents older than an hour are removed."""
    files = serving_files(source)
    content = content_hash(files)
    path = write_targz(folder / f"model-{content[:16]}.tar.gz", files)
    for old in folder.glob("model-*.tar.gz"):
        if old != path and old.stat().st_mtime < time.time() - STALE_S:
            old.unlink(missing_ok=True)
    return path, content
