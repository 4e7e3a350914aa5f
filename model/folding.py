"""Fold each inference-mode BatchNorm into the convolution before it.

``y = BN(conv(x))`` is an affine map of ``conv(x)``, so in evaluation the two become one
convolution with rescaled weights and a bias (``torch.nn.utils.fusion``): one pass over the
activations instead of two. timm's ``BatchNormAct2d`` also applies its activation, which
stays as a module of its own.

A convolution is paired with the BatchNorm registered right after it in the same parent,
which is the order the timm and torchvision families run them in. Because a family could
register modules in another order than it runs them, ``fold_batchnorm`` checks the folded
network against the original on a probe batch in float32 and returns ``None`` when they
disagree: the caller keeps the original.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

TOLERANCE = 1e-3  # on logits in float32; folding changes only rounding


def fold_batchnorm(model: nn.Module, probe: torch.Tensor) -> tuple[nn.Module, int] | None:
    """A copy of ``model`` (in eval mode) with its BatchNorms folded, and how many were.

    ``probe`` is an input batch; ``None`` comes back when the folded copy's output on it
    differs from the original's by more than ``TOLERANCE``.
    """
    model = model.eval()
    folded = copy.deepcopy(model)
    count = 0
    for parent in folded.modules():
        names = list(parent._modules)
        for first, second in itertools.pairwise(names):
            conv, norm = parent._modules[first], parent._modules[second]
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(norm, nn.BatchNorm2d)
                and norm.track_running_stats
                and conv.out_channels == norm.num_features
            ):
                parent._modules[first] = fuse_conv_bn_eval(conv, norm)
                parent._modules[second] = _after_norm(norm)
                count += 1
    if count == 0:
        return None
    with torch.inference_mode():
        expected = model(probe).float()
        actual = folded(probe).float()
    if not torch.allclose(actual, expected, atol=TOLERANCE, rtol=TOLERANCE):
        return None
    return folded, count


def _after_norm(norm: nn.BatchNorm2d) -> nn.Module:
    """What stays of a BatchNorm once folded: timm's fused activation (and its dropout)."""
    act, drop = getattr(norm, "act", None), getattr(norm, "drop", None)
    kept = [m for m in (drop, act) if m is not None and not isinstance(m, nn.Identity)]
    return nn.Sequential(*kept) if kept else nn.Identity()
