"""The model artifact: ``model.tar.gz`` as the SageMaker PyTorch container expects it.

    model.pt             the network's state dict
    model_card.json      version, backbone, K, input size, training data, metrics
    code/inference.py    the handler functions (model_fn, input_fn, predict_fn, output_fn)
    code/model/          this package but server.py, so it needs nothing from the repository
    code/requirements.txt

The container extracts it into ``/opt/ml/model`` and imports ``code/inference.py``.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

import torch

from .backbones import create_backbone
from .card import ModelCard
from .network import CountingNet

PACKAGE = Path(__file__).resolve().parent
WEIGHTS = "model.pt"
CARD = "model_card.json"
ENTRY_POINT = "from model.inference import input_fn, model_fn, output_fn, predict_fn  # noqa\n"
# What the AWS PyTorch inference container lacks (it has torch, torchvision and pillow).
REQUIREMENTS = "timm>=1.0.9\n"


def build_model(
    card: ModelCard, weights: str | Path | None = None, *, drop_path_rate: float = 0.0
) -> CountingNet:
    """The network a card describes; ``weights`` are backbone weights for training."""
    backbone = create_backbone(card.backbone, weights, drop_path_rate=drop_path_rate)
    return CountingNet(backbone, card.max_count, card.dropout)


def container_sources() -> list[Path]:
    """The package's modules the container runs: all but the local server (aiohttp)."""
    return sorted(p for p in PACKAGE.glob("*.py") if p.name != "server.py")


def artifact_files(model: CountingNet, card: ModelCard) -> dict[str, bytes]:
    """The artifact's files by path: one definition for the tarball and the folder."""
    if model.max_count != card.max_count:
        raise ValueError(f"model has K={model.max_count}, card says {card.max_count}")
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    files = {
        WEIGHTS: weights.getvalue(),
        CARD: card.to_json().encode(),
        "code/inference.py": ENTRY_POINT.encode(),
        "code/requirements.txt": REQUIREMENTS.encode(),
    }
    for source in container_sources():
        files[f"code/model/{source.name}"] = source.read_bytes()
    return files


def write_artifact(path: str | Path, model: CountingNet, card: ModelCard) -> Path:
    """Write ``model.tar.gz`` atomically (a temp file renamed into place)."""
    files = artifact_files(model, card)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp,
        tarfile.open(fileobj=tmp, mode="w:gz") as tar,
    ):
        for name, data in files.items():
            _add(tar, name, data)
    Path(tmp.name).chmod(0o644)  # temp files are private; an artifact is not
    Path(tmp.name).replace(path)
    return path


def write_artifact_dir(directory: str | Path, model: CountingNet, card: ModelCard) -> Path:
    """The artifact unpacked, for ``SM_MODEL_DIR``: SageMaker tars the folder itself."""
    directory = Path(directory)
    for name, data in artifact_files(model, card).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return directory


def read_artifact(path: str | Path) -> tuple[CountingNet, ModelCard]:
    """Load a ``model.tar.gz`` or the folder SageMaker extracted it into."""
    path = Path(path)
    if path.is_dir():
        card = ModelCard.from_json((path / CARD).read_text())
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
    else:
        with tarfile.open(path, "r:gz") as tar:
            card = ModelCard.from_json(_read(tar, CARD).decode())
            state = torch.load(
                io.BytesIO(_read(tar, WEIGHTS)), map_location="cpu", weights_only=True
            )
    model = build_model(card)
    model.load_state_dict(state)
    return model.eval(), card


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise ValueError(f"{name} missing from the artifact")
    return member.read()
