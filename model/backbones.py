"""Feature extractors by name: ``timm/<architecture>`` or ``torchvision/<architecture>``.

``weights`` is ``None`` (random init), ``"download"`` (the library's own pretrained
weights: the path used on AWS) or a local file of backbone weights (offline work).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Backbone:
    module: nn.Module  # images (B, 3, H, W), normalised -> features (B, num_features)
    num_features: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def create_backbone(
    name: str, weights: str | Path | None = None, *, drop_path_rate: float = 0.0
) -> Backbone:
    """``drop_path_rate`` (stochastic depth) only matters in training, for timm backbones."""
    library, _, architecture = name.partition("/")
    if library == "timm":
        download = weights == "download"
        backbone = _timm(architecture, download=download, drop_path_rate=drop_path_rate)
    elif library == "torchvision":
        backbone = _torchvision(architecture, download=weights == "download")
    else:
        raise ValueError(f"backbone {name!r}: expected 'timm/<arch>' or 'torchvision/<arch>'")
    if weights not in (None, "download"):
        load_backbone_weights(backbone.module, Path(weights))
    return backbone


def load_backbone_weights(module: nn.Module, path: Path) -> None:
    """Load a backbone state dict, ignoring only the ImageNet classifier it may carry."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shapes differ: weights of another architecture
        raise ValueError(f"{path} does not fit the backbone: {str(error)[:300]}") from error
    unexpected = [k for k in result.unexpected_keys if not k.startswith(("classifier.", "fc."))]
    if result.missing_keys or unexpected:
        raise ValueError(
            f"{path} does not fit the backbone: missing {result.missing_keys[:5]}, "
            f"unexpected {unexpected[:5]}"
        )


def _timm(architecture: str, *, download: bool, drop_path_rate: float = 0.0) -> Backbone:
    import timm

    module = timm.create_model(
        architecture, pretrained=download, num_classes=0, drop_path_rate=drop_path_rate
    )
    config = module.pretrained_cfg
    return Backbone(
        module,
        module.num_features,
        tuple(config.get("mean", IMAGENET_MEAN)),
        tuple(config.get("std", IMAGENET_STD)),
    )


def _torchvision(architecture: str, *, download: bool) -> Backbone:
    import torchvision

    module = torchvision.models.get_model(architecture, weights="DEFAULT" if download else None)
    # Replace the ImageNet classifier, whatever the family calls it, by the identity.
    for attribute in ("fc", "classifier", "head", "heads"):
        if hasattr(module, attribute):
            setattr(module, attribute, nn.Identity())
            break
    else:
        raise ValueError(f"torchvision/{architecture}: no classifier attribute to replace")
    module.eval()
    with torch.no_grad():
        num_features = module(torch.zeros(1, 3, 64, 64)).shape[1]
    return Backbone(module, num_features, IMAGENET_MEAN, IMAGENET_STD)
