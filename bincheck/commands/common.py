"""What several command groups share: default paths and names, AWS clients, model checks."""

from __future__ import annotations

from pathlib import Path

from contract.names import ResourceNames

DEFAULTS = ResourceNames()
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DEFAULT_MODEL = REPO / "model" / "default" / "model.tar.gz"


def client(service: str):
    """A boto3 client, made when a command runs (so ``AWS_ENDPOINT_URL`` and mocks apply)."""
    import boto3

    return boto3.client(service)


def require_model(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"no model at {path}: pass --model PATH/model.tar.gz")
