"""The counting network: backbone features -> a distribution over counts.

The head has ``max_count + 1`` outputs: counts ``0 .. K-1`` and "K or more". Input
normalisation is part of the network, so training and serving cannot disagree on it: the
network takes images as uint8 (or floats in [0, 1]), ``(B, 3, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import Backbone


class CountingNet(nn.Module):
    def __init__(self, backbone: Backbone, max_count: int, dropout: float = 0.2) -> None:
        super().__init__()
        if max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {max_count}")
        self.max_count = max_count
        self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1) * 255)
        self.backbone = backbone.module
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(backbone.num_features, max_count + 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K + 1)``."""
        if images.dtype != torch.uint8:
            images = images * 255  # floats in [0, 1]
        # In the network's own dtype: float32, or bfloat16/float16 weights for inference.
        x = (images.to(self.mean.dtype) - self.mean) / self.std
        return self.head(self.backbone(x))
