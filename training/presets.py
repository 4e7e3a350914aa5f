"""Augmentation for bin photos, on uint8 tensors at the network's input size.

Bins are photographed from above: flips either way and quarter-free small rotations keep a
plausible photo, and lighting varies between robots and aisles. Nothing here may add or
remove items, so no aggressive crops and no mixing of photos.

``TrainPreset`` augments one photo at a time (torchvision v2); ``BatchAugment`` draws from
the same distribution for a whole batch on its device, each photo with its own draw (a v2
transform given a batch draws once for all of it). Training uses ``BatchAugment``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from torchvision.transforms import v2

GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


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


@dataclass(frozen=True)
class BatchParams:
    """One draw per photo of a batch of ``B``."""

    hflip: torch.Tensor  # (B,) bool
    vflip: torch.Tensor  # (B,) bool
    theta: torch.Tensor  # (B, 2, 3): output to input, normalised coordinates (affine_grid)
    factors: torch.Tensor  # (B, 3): brightness, contrast, saturation
    order: torch.Tensor  # (B, 3): the order the three colour operations apply in

    def to(self, device: torch.device) -> BatchParams:
        return BatchParams(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


class BatchAugment:
    """``TrainPreset``'s augmentation of a uint8 batch ``(B, 3, H, W)`` at the network's
    input size, on the batch's device: floats in [0, 1] come out. Strength 0 changes nothing.

    The flips, the affine and the resized crop make one matrix per photo, applied in one
    bilinear ``grid_sample``; the colour operations broadcast one factor per photo, in an
    order drawn per photo as ``ColorJitter`` draws it. Unlike ``TrainPreset`` the colours
    change after the crop, so contrast blends towards the crop's mean grey, not the whole
    photo's, and the affine interpolates bilinearly, not to the nearest pixel.
    """

    def __init__(self, size: tuple[int, int], strength: float = 1.0) -> None:
        self.size = size
        self.strength = strength
        self.log_ratios = tuple(math.log(r) for r in _ratios(size))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.strength <= 0:
            return images
        params = self.sample(len(images), (images.shape[-2], images.shape[-1]))
        return self.apply(images, params.to(images.device))

    def sample(
        self, batch: int, size: tuple[int, int], generator: torch.Generator | None = None
    ) -> BatchParams:
        """Draws on the CPU (``generator`` or torch's default) for photos of ``size``."""
        s = self.strength

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            return torch.rand(*shape or (batch,), generator=generator) * (high - low) + low

        hflip, vflip = (torch.rand(2, batch, generator=generator) < 0.5).unbind()
        height, width = size
        affine = torch.rand(batch, generator=generator) < 0.5 * s
        angle = torch.where(affine, uniform(-10 * s, 10 * s), 0.0).deg2rad()
        shift_x = torch.where(affine, uniform(-0.05 * width, 0.05 * width).round(), 0.0)
        shift_y = torch.where(affine, uniform(-0.05 * height, 0.05 * height).round(), 0.0)
        scale = torch.where(affine, uniform(0.95, 1.05), 1.0)
        top, left, crop_h, crop_w = self._crops(batch, size, uniform, generator)
        factors = uniform(max(0.0, 1 - 0.3 * s), 1 + 0.3 * s, batch, 3)
        order = torch.rand(batch, 3, generator=generator).argsort(1)
        # Pixel coordinates (0..W, 0..H): output -> crop in the affine's output -> input.
        crop = _matrices(crop_w / self.size[1], crop_h / self.size[0], left, top)
        cos, sin = angle.cos() / scale, angle.sin() / scale
        centre_x, centre_y = width / 2, height / 2
        into_x, into_y = centre_x + shift_x, centre_y + shift_y
        inverse = torch.zeros(batch, 3, 3)
        inverse[:, 0, 0], inverse[:, 0, 1] = cos, sin
        inverse[:, 1, 0], inverse[:, 1, 1] = -sin, cos
        inverse[:, 0, 2] = centre_x - cos * into_x - sin * into_y
        inverse[:, 1, 2] = centre_y + sin * into_x - cos * into_y
        inverse[:, 2, 2] = 1
        to_input = _normalising(width, height) @ inverse @ crop
        from_output = torch.linalg.inv(_normalising(self.size[1], self.size[0]))
        theta = (to_input @ from_output)[:, :2]
        return BatchParams(hflip, vflip, theta, factors, order)

    def _crops(
        self,
        batch: int,
        size: tuple[int, int],
        uniform: Callable[..., torch.Tensor],
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, ...]:
        """``RandomResizedCrop``'s draw: 10 tries per photo, else the whole photo."""
        height, width = size
        area = height * width * uniform(0.85, 1.0, batch, 10)
        ratio = uniform(*self.log_ratios, batch, 10).exp()
        w, h = (area * ratio).sqrt().round(), (area / ratio).sqrt().round()
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = fits.int().argmax(1, keepdim=True)
        found = fits.any(1)
        w = torch.where(found, w.gather(1, first).squeeze(1), float(width))
        h = torch.where(found, h.gather(1, first).squeeze(1), float(height))
        top = (torch.rand(batch, generator=generator) * (height - h + 1)).floor()
        left = (torch.rand(batch, generator=generator) * (width - w + 1)).floor()
        return top, left, h, w

    def apply(self, images: torch.Tensor, params: BatchParams) -> torch.Tensor:
        """``images`` (uint8 or floats in [0, 1]) augmented by ``params``: floats in [0, 1]."""
        x = images.float()
        if images.dtype == torch.uint8:
            x = x.div_(255)
        # A flip mirrors where the output samples the photo: pixel centres land on pixel
        # centres, so a flip alone gives the photo's own values back.
        mirror = torch.stack([params.hflip, params.vflip], 1).float().mul(-2).add(1)
        x = F.grid_sample(
            x,
            _grid(params.theta * mirror[:, :, None], self.size),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        per_photo = (-1, 1, 1, 1)
        for step in range(3):
            operation = params.order[:, step]
            factor = params.factors.gather(1, operation[:, None]).view(per_photo)
            gray = _gray(x)
            operation = operation.view(per_photo)
            # Each operation blends towards its own target: black, the mean grey, the grey.
            target = torch.where(
                operation == 0,
                0.0,
                torch.where(operation == 1, gray.mean((1, 2, 3), keepdim=True), gray),
            )
            x = x.mul_(factor).add_(target.mul_(1 - factor)).clamp_(0, 1)
        return x


def _gray(x: torch.Tensor) -> torch.Tensor:
    """torchvision's ``rgb_to_grayscale``, ``(B, 1, H, W)``."""
    red, green, blue = x.split(1, dim=1)
    return red.mul(GRAY[0]).add_(green, alpha=GRAY[1]).add_(blue, alpha=GRAY[2])


def _grid(theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, *size), align_corners=False)``, by broadcasting."""
    height, width = size
    xs = torch.arange(width, device=theta.device).mul(2).add(1).div(width).sub(1)
    ys = torch.arange(height, device=theta.device).mul(2).add(1).div(height).sub(1)
    theta = theta.view(-1, 1, 1, 2, 3)
    return (
        theta[..., 0] * xs.view(1, 1, -1, 1) + theta[..., 1] * ys.view(1, -1, 1, 1) + theta[..., 2]
    )


def _matrices(
    scale_x: torch.Tensor, scale_y: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor
) -> torch.Tensor:
    """Per-photo ``(B, 3, 3)``: x -> scale_x * x + shift_x, y likewise."""
    matrices = torch.zeros(len(scale_x), 3, 3)
    matrices[:, 0, 0], matrices[:, 1, 1], matrices[:, 2, 2] = scale_x, scale_y, 1
    matrices[:, 0, 2], matrices[:, 1, 2] = shift_x, shift_y
    return matrices


def _normalising(width: int, height: int) -> torch.Tensor:
    """Pixel coordinates (0..W) -> ``affine_grid``'s (-1..1, ``align_corners=False``)."""
    return torch.tensor([[2 / width, 0, -1], [0, 2 / height, -1], [0, 0, 1.0]])


def _ratios(size: tuple[int, int]) -> tuple[float, float]:
    aspect = size[1] / size[0]
    return aspect * 0.9, aspect * 1.1
