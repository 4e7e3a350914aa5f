"""Augmentation for bin photos, on uint8 tensors at the network's input size.

Bins are photographed from above: flips either way and quarter-free small rotations keep a
plausible photo, and lighting varies between robots and aisles. Nothing here may add or
remove items, so no aggressive crops and no mixing of photos.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2


class TrainPreset:
    def __init__(self, size: tuple[int, int], strength: float = 1.0) -> None:
        self.transform = v2.Compose(
            [
                v2.RandomHorizontalFlip(),
                v2.RandomVerticalFlip(),
                v2.RandomApply(
                    [
                        v2.RandomAffine(
                            degrees=10 * strength, translate=(0.05, 0.05), scale=(0.95, 1.05)
                        )
                    ],
                    p=0.5 * strength,
                ),
                v2.ColorJitter(
                    brightness=0.3 * strength, contrast=0.3 * strength, saturation=0.3 * strength
                ),
                v2.RandomResizedCrop(size, scale=(0.85, 1.0), ratio=_ratios(size), antialias=True),
            ]
        )

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.transform(image)


def _ratios(size: tuple[int, int]) -> tuple[float, float]:
    aspect = size[1] / size[0]
    return aspect * 0.9, aspect * 1.1
