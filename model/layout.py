"""The model artifact's layout, ``model.tar.gz`` as SageMaker's PyTorch container takes it:

    model.pt             the network's state dict
    model_card.json      version, backbone, K, input size, training data, metrics
    code/inference.py    the entry point the toolkit imports: ``model_fn`` and ``transform_fn``
    code/model/          this package, so it needs nothing from the repository
    lib/                 the pure-Python libraries the container lacks (timm), vendored

The container extracts it into ``/opt/ml/model`` and imports ``code/inference.py``, which
puts ``lib/`` first on the import path: the endpoint starts without any package index (no
``code/requirements.txt``, which the toolkit would pip-install at every start). ``lib/``
sits outside ``code/`` because the CDK app rebuilds ``code/`` from this checkout at synthesis,
without torch or timm installed, and keeps the rest: the libraries stay with the weights
they were written with. Needs no torch.
"""

from __future__ import annotations

import json
import tarfile
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent
WEIGHTS = "model.pt"
CARD = "model_card.json"
CODE = "code/"
LIB = "lib/"
ENTRY_POINT = """\
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "lib"  # the artifact's vendored libraries
if LIB.is_dir() and str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))

from model.container import model_fn, transform_fn  # noqa: E402
"""
# What the AWS PyTorch inference container lacks (it has torch, torchvision and pillow):
# timm, without its optional hub and safetensors support (never used to serve).
VENDORED = ("timm",)
# Package data the network never reads: ImageNet label lists (4.6 MB).
UNUSED_DATA = ("timm/data/_info/",)
# TorchServe's settings on the endpoint (read from the environment, as the toolkit's
# config allows): bodies up to 32 MiB reach the handler, so it is the handler that refuses
# a photo over its 20 MiB (or the base64 of one) with the contract's JSON 413. Answers are
# a few KiB, far under TorchServe's default 6,553,500-byte response limit.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MODEL_SERVER_ENVIRONMENT = {"TS_MAX_REQUEST_SIZE": str(MAX_REQUEST_BYTES)}


def container_sources() -> list[Path]:
    """The package's modules: all of them run in the container (the local server, which
    needs aiohttp, is ``bincheck/inference_server.py``)."""
    return sorted(PACKAGE.glob("*.py"))


def code_files() -> dict[str, bytes]:
    """``code/`` by path, from this checkout."""
    files = {f"{CODE}inference.py": ENTRY_POINT.encode()}
    for source in container_sources():
        files[f"{CODE}model/{source.name}"] = source.read_bytes()
    return files


def lib_files() -> dict[str, bytes]:
    """``lib/`` by path: each vendored distribution as installed here (its modules, the
    package data it may read, its metadata and licence; no bytecode)."""
    files = {}
    for name in VENDORED:
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError as error:
            raise ValueError(f"{name} is not installed: the artifact must carry it") from error
        for file in distribution.files or ():
            path = file.as_posix()
            if _vendored(name, path):
                files[f"{LIB}{path}"] = file.locate().read_bytes()
    return files


def _vendored(package: str, path: str) -> bool:
    top, _, rest = path.partition("/")
    if top.endswith(".dist-info"):
        return rest == "METADATA" or rest.startswith("licenses/")
    bytecode = path.endswith(".pyc") or "/__pycache__/" in path
    return top == package and not bytecode and not path.startswith(UNUSED_DATA)


def read_card(path: Path, *, source: str | None = None) -> dict[str, Any]:
    """The card of the ``model.tar.gz`` at ``path`` (named ``source`` in errors), without
    loading the network; ValueError if it is not a model artifact."""
    name = source or str(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            missing = sorted({WEIGHTS, CARD} - set(tar.getnames()))
            if missing:
                raise ValueError(f"{name} is not a model artifact: no {', '.join(missing)}")
            card = json.load(tar.extractfile(CARD))  # type: ignore[arg-type]
    except (tarfile.TarError, json.JSONDecodeError) as error:
        raise ValueError(f"{name} is not a model artifact: {error}") from error
    if not isinstance(card, dict):
        raise ValueError(f"{name} is not a model artifact: its {CARD} is not an object")
    return card
