"""The model artifact: write, read and repack ``model.tar.gz`` (its layout:
``model/layout.py``). The same files give the same bytes: members sorted, no timestamps."""

from __future__ import annotations

import dataclasses
import gzip
import io
import tarfile
import tempfile
from pathlib import Path

import torch

from .backbones import create_backbone
from .card import ModelCard
from .layout import CARD, WEIGHTS, code_files, lib_files, read_card
from .network import CountingNet, EnsembleNet

Network = CountingNet | EnsembleNet


def build_model(
    card: ModelCard, weights: str | Path | None = None, *, drop_path_rate: float = 0.0
) -> CountingNet:
    """The network a card describes; ``weights`` are backbone weights for training."""
    if card.members > 1:
        raise ValueError(f"{card.version} is an ensemble of {card.members}: it is not trained")
    backbone = create_backbone(card.backbone, weights, drop_path_rate=drop_path_rate)
    return CountingNet(backbone, card.max_count, card.dropout)


def build_network(card: ModelCard) -> Network:
    """The served network a card describes, one or an ensemble, weights still to load (the
    members' temperatures are in the weights)."""
    if card.members == 1:
        return build_model(card)
    single = dataclasses.replace(card, members=1)
    return EnsembleNet([build_model(single) for _ in range(card.members)], [1.0] * card.members)


def artifact_files(model: Network, card: ModelCard) -> dict[str, bytes]:
    """The artifact's files by path: one definition for the tarball and the folder."""
    if model.max_count != card.max_count:
        raise ValueError(f"model has K={model.max_count}, card says {card.max_count}")
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    return {
        WEIGHTS: weights.getvalue(),
        CARD: card.to_json().encode(),
        **code_files(),
        **lib_files(),
    }


def write_artifact(path: str | Path, model: Network, card: ModelCard) -> Path:
    """Write ``model.tar.gz`` atomically (a temp file renamed into place)."""
    return write_files(path, artifact_files(model, card))


def repack(source: str | Path, target: str | Path | None = None) -> Path:
    """``source``'s weights and card, byte for byte, with this checkout's ``code/`` and
    this environment's ``lib/``; written to ``target`` (default: over ``source``)."""
    source = Path(source)
    read_card(source)  # refuses what is not a model artifact
    with tarfile.open(source, "r:gz") as tar:
        kept = {WEIGHTS: _read(tar, WEIGHTS), CARD: _read(tar, CARD)}
    return write_files(target or source, {**kept, **code_files(), **lib_files()})


def write_files(path: str | Path, files: dict[str, bytes]) -> Path:
    """``files`` (path in the artifact -> bytes) as ``model.tar.gz``, atomically."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            _add(tar, name, data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(gzip.compress(raw.getvalue(), mtime=0))
    Path(tmp.name).chmod(0o644)  # temp files are private; an artifact is not
    Path(tmp.name).replace(path)
    return path


def write_artifact_dir(directory: str | Path, model: Network, card: ModelCard) -> Path:
    """The artifact unpacked, for ``SM_MODEL_DIR``: SageMaker tars the folder itself."""
    directory = Path(directory)
    for name, data in artifact_files(model, card).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return directory


def read_artifact(path: str | Path) -> tuple[Network, ModelCard]:
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
    model = build_network(card)
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
