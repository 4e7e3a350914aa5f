"""The counting network: backbone features -> a distribution over counts.

The head has ``max_count + 1`` outputs: counts ``0 .. K-1`` and "K or more". Input
normalisation is part of the network, so training and serving cannot disagree on it: the
network takes images as uint8 (or floats in [0, 1]), ``(B, 3, H, W)``.

An ensemble (``EnsembleNet``) is several trained counting networks served as one: the mean
of their probabilities, each at its own temperature, returned as logits (their log), so
every path that serves one network serves an ensemble unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


class EnsembleNet(nn.Module):
    """Logits ``log(mean_i softmax(member_i(x) / T_i))``: a softmax of them (at the card's
    temperature 1) is the members' mean distribution. Each member's temperature is a
    buffer, so it travels with the weights."""

    def __init__(self, members: Sequence[CountingNet], temperatures: Sequence[float]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if len(temperatures) != len(members):
            raise ValueError(f"{len(members)} members but {len(temperatures)} temperatures")
        if not all(t > 0 and math.isfinite(t) for t in temperatures):
            raise ValueError(f"temperatures must be finite numbers > 0, got {list(temperatures)}")
        counts = {member.max_count for member in members}
        if len(counts) != 1:
            raise ValueError(f"members count to different K: {sorted(counts)}")
        self.max_count = members[0].max_count
        self.members = nn.ModuleList(members)
        self.register_buffer("temperatures", torch.tensor(list(temperatures)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Log of the members' mean probabilities ``(B, K + 1)``, in float32."""
        log_probabilities = torch.stack(
            [
                (member(images).float() / temperature).log_softmax(dim=1)
                for member, temperature in zip(self.members, self.temperatures, strict=True)
            ]
        )
        return log_probabilities.logsumexp(dim=0) - math.log(len(self.members))
