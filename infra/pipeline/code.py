"""The project's training code as SageMaker's PyTorch training container takes it: one
``tar.gz`` whose root holds the entry script, the ``training`` and ``model`` packages and a
``requirements.txt`` (the container installs it before training).

Built at synthesis, byte for byte the same from the same sources (``infra/archives.py``),
so the asset's hash, and with it the deployment, changes only when the code does. It is a
file asset because CDK zips folder assets, and the container reads only ``tar.gz``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..archives import write_targz
from ..config import REPO

PACKAGES = ("training", "model")
ENTRY = "sagemaker_entry.py"  # training/sagemaker_entry.py, placed at the root
EXTRAS = ("model", "training")  # pyproject's extras that training needs
BUILT = REPO / "build" / "training-code.tar.gz"


def requirements() -> str:
    """The model and training extras of pyproject.toml: one list of dependencies. torch and
    torchvision are the container's own, and satisfy the pins."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return "".join(f"{line}\n" for name in EXTRAS for line in extras[name])


def code_files() -> dict[str, bytes]:
    files = {
        path.relative_to(REPO).as_posix(): path.read_bytes()
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    files[ENTRY] = (REPO / "training" / ENTRY).read_bytes()
    files["requirements.txt"] = requirements().encode()
    return files


def build_training_code(path: Path = BUILT) -> Path:
    """Writes the archive (only when its bytes change) and returns its path."""
    return write_targz(path, code_files())
