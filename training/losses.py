"""Losses over counts ``0..K`` (``K`` meaning "K or more").

``ce``: cross-entropy (optionally label-smoothed and class-weighted). ``ordinal``:
cross-entropy against a Gaussian around the true count, so predicting 3 for a 4 costs less
than predicting 0, plus the squared earth mover's distance between the predicted and true
cumulative distributions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("ce", "ordinal")


class CountLoss(nn.Module):
    def __init__(
        self,
        kind: str,
        num_classes: int,
        *,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        sigma: float = 0.75,
        emd_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}: one of {LOSSES}")
        self.kind = kind
        self.label_smoothing = label_smoothing
        self.emd_weight = emd_weight
        self.register_buffer("class_weights", class_weights)
        positions = torch.arange(num_classes, dtype=torch.float32)
        kernel = torch.exp(-((positions[None, :] - positions[:, None]) ** 2) / (2 * sigma**2))
        self.register_buffer("soft_targets", kernel / kernel.sum(dim=1, keepdim=True))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "ce":
            return F.cross_entropy(
                logits, targets, weight=self.class_weights, label_smoothing=self.label_smoothing
            )
        soft = self.soft_targets[targets]
        log_probs = logits.log_softmax(dim=1)
        per_example = -(soft * log_probs).sum(dim=1)
        cdf_gap = log_probs.exp().cumsum(dim=1) - F.one_hot(targets, logits.shape[1]).cumsum(dim=1)
        per_example = per_example + self.emd_weight * cdf_gap.pow(2).sum(dim=1)
        if self.class_weights is not None:
            weights = self.class_weights[targets]
            return (per_example * weights).sum() / weights.sum()
        return per_example.mean()


def balanced_class_weights(
    targets: torch.Tensor, num_classes: int, power: float = 0.5
) -> torch.Tensor:
    """Inverse-frequency weights, softened by ``power`` (0 = none, 1 = fully balanced)."""
    counts = torch.bincount(targets, minlength=num_classes).float().clamp(min=1)
    weights = (counts.sum() / counts) ** power
    return weights / weights.mean()
