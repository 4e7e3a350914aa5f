"""Photo bytes -> uint8 tensors at the network's input size, refusing bad input clearly.

Two paths that must agree: ``reduced=False`` decodes the whole photo and resizes in float
(what a plain handler does); ``reduced=True`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale
when the photo is at least that much larger than the input, and resizes uint8 tensors.
"""

from __future__ import annotations

import io
import warnings

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as F

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
DEFAULT_MAX_PIXELS = 40_000_000  # a 7,000 x 5,700 photo; more is a decompression bomb
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class BadInput(ValueError):
    """The request cannot be answered with a count; ``status`` is the HTTP status to send."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def decode(
    data: bytes,
    size: tuple[int, int],
    *,
    reduced: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> torch.Tensor:
    """A ``(3, height, width)`` uint8 tensor, ``size`` being ``(height, width)``."""
    if not data:
        raise BadInput("empty image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadInput(f"image too large: {error}", 413) from error
    except UnidentifiedImageError as error:
        raise BadInput("not a JPEG or PNG image", 415) from error
    if image.format not in FORMATS:
        raise BadInput(f"unsupported image format {image.format}: send JPEG or PNG", 415)
    width, height = image.size
    if width * height > max_pixels:
        raise BadInput(
            f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}",
            413,
        )
    if reduced and image.format == "JPEG":
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale, keeping at least twice the input size so
        # the antialiased resize that follows still sees the detail: only camera-size photos
        # (4x the input or more) are affected, and their decode is up to 10x cheaper.
        image.draft("RGB", (2 * size[1], 2 * size[0]))
    try:
        image = image.convert("RGB")  # decodes; raises on truncated or corrupt data
    except (OSError, SyntaxError, ValueError) as error:
        raise BadInput(f"corrupt or truncated {image.format} image: {error}") from error
    pixels = F.pil_to_tensor(image)
    if reduced:
        return F.resize(pixels, list(size), antialias=True)
    resized = F.resize(pixels.float(), list(size), antialias=True)
    return resized.round_().clamp_(0, 255).to(torch.uint8)
