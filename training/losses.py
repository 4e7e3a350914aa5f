"""Losses over counts ``0..K`` (``K`` meaning "K or more").

``ce``: cross-entropy (optionally label-smoothed and class-weighted). ``ordinal``:
cross-entropy against a Gaussian around the true count, so predicting 3 for a 4 costs less
than predicting 0, plus the squared earth mover's distance between the predicted and true
cumulative distributions. With ``sigma=0`` the targets are the true counts themselves: the
loss is cross-entropy plus the ranked probability score, both proper scoring rules, so it
is lowest for the true distribution; a Gaussian's spread teaches flatter probabilities
than the photos warrant.

``DistillationLoss`` (``--teacher``): a mix of the count loss on the true class and the
cross-entropy of the network's distribution against a teacher's (Hinton et al., 2015,
"Distilling the knowledge in a neural network"), to teach one network what an ensemble
knows.
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
        if sigma < 0:
            raise ValueError(f"sigma must be 0 (hard targets) or more, not {sigma}")
        positions = torch.arange(num_classes, dtype=torch.float32)
        kernel = (
            torch.exp(-((positions[None, :] - positions[:, None]) ** 2) / (2 * sigma**2))
            if sigma > 0
            else torch.eye(num_classes)
        )
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


class DistillationLoss(nn.Module):
    """``(1 - weight) x count_loss(logits, class) + weight x H(teacher, softmax(logits))``,
    each photo's soft term weighed by its class's weight as the count loss weighs it.

    Targets ``(B, 1 + K + 1)``: the class, then the teacher's probabilities (what a
    PhotoDataset with a teacher attached gives); plain class indices (evaluation) get the
    count loss alone."""

    def __init__(self, count_loss: CountLoss, weight: float) -> None:
        super().__init__()
        if not 0 <= weight <= 1:
            raise ValueError(f"the teacher's weight must be in [0, 1], not {weight}")
        self.count_loss = count_loss
        self.weight = weight

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.dim() == 1:
            return self.count_loss(logits, targets)
        classes, teacher = targets[:, 0].long(), targets[:, 1:]
        soft = -(teacher * logits.float().log_softmax(dim=1)).sum(dim=1)
        weights = self.count_loss.class_weights
        soft_mean = (
            (soft * weights[classes]).sum() / weights[classes].sum()
            if weights is not None
            else soft.mean()
        )
        return (1 - self.weight) * self.count_loss(logits, classes) + self.weight * soft_mean


def balanced_class_weights(
    targets: torch.Tensor, num_classes: int, power: float = 0.5
) -> torch.Tensor:
    """Inverse-frequency weights, softened by ``power`` (0 = none, 1 = fully balanced)."""
    counts = torch.bincount(targets, minlength=num_classes).float().clamp(min=1)
    weights = (counts.sum() / counts) ** power
    return weights / weights.mean()


def prior_matching_weights(
    trained: torch.Tensor, main: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Per-class weights under which the ``trained`` photos' classes weigh as often as the
    ``main`` photos' do: extra training folders with another mix of counts then add photos
    without moving the model's prior away from the main folder's (the photos it serves).
    A class the main photos lack keeps weight 0."""
    trained_share = torch.bincount(trained, minlength=num_classes).float()
    main_share = torch.bincount(main, minlength=num_classes).float()
    trained_share, main_share = trained_share / trained_share.sum(), main_share / main_share.sum()
    weights = torch.where(trained_share > 0, main_share / trained_share.clamp(min=1e-12), 0.0)
    return weights / (weights * trained_share).sum()
