"""``tar.gz`` files built at synthesis, byte for byte the same from the same contents
(sorted members, zero timestamps, no owners), so an asset's hash, and with it the
deployment, changes only when what is inside does."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of ``files`` (path -> bytes), members sorted, no timestamps."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def write_targz(path: Path, files: dict[str, bytes]) -> Path:
    """Writes ``path`` as a ``tar.gz`` of ``files``, only when its bytes change."""
    archive = gzip.compress(tar_bytes(files), mtime=0)
    if not path.is_file() or path.read_bytes() != archive:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(archive)
        temporary.replace(path)
    return path
