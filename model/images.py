"""Photo bytes -> uint8 tensors at the network's input size, refusing bad input clearly.

Paths that must agree: ``reduced=False`` decodes the whole photo and resizes in float
(what a plain handler does); ``reduced=True`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale
when the photo is at least that much larger than the input, and resizes uint8 tensors;
``decode_batch`` decodes several JPEGs in one call on a device (nvJPEG on a GPU) and
resizes them there in float.
"""

from __future__ import annotations

import io
import warnings

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as F

try:  # deprecated since torchvision 0.29 (TorchCodec takes it over), used for nvJPEG only
    from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:  # a torchvision without it: every photo takes ``decode``'s path
    decode_jpeg = None

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
    image = _open(data, max_pixels)
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
    return _resize_float(pixels, size)


def decode_batch(
    photos: list[bytes],
    size: tuple[int, int],
    *,
    device: torch.device,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[torch.Tensor | BadInput]:
    """Decode several photos on ``device`` in one call (nvJPEG on a GPU), each resized there
    in float like ``decode``; each photo's refusal in its place.

    Headers are checked on the CPU first, with ``decode``'s limits. JPEGs go to
    ``torchvision.io.decode_jpeg`` together; PNGs, and every JPEG of a call that fails (a
    corrupt one spoils the batch), take ``decode``'s path, which names what is wrong.
    """
    results: list[torch.Tensor | BadInput | None] = [None] * len(photos)
    jpegs = []
    for i, data in enumerate(photos):
        try:
            image = _open(data, max_pixels)
        except BadInput as error:
            results[i] = error
            continue
        # A JPEG must end with its EOI marker; one that does not (truncated, or trailing
        # bytes) goes the careful way.
        if image.format == "JPEG" and data.rstrip(b"\0").endswith(b"\xff\xd9"):
            jpegs.append(i)
    if jpegs and decode_jpeg is not None:
        try:
            decoded = decode_jpeg(
                [torch.frombuffer(bytearray(photos[i]), dtype=torch.uint8) for i in jpegs],
                mode=ImageReadMode.RGB,
                device=device,
            )
        except RuntimeError:
            decoded = None
        if decoded is not None:
            for i, pixels in zip(jpegs, decoded, strict=True):
                results[i] = _resize_float(pixels, size)
    for i, data in enumerate(photos):
        if results[i] is None:
            try:
                results[i] = decode(data, size, max_pixels=max_pixels).to(device)
            except BadInput as error:
                results[i] = error
    return results  # type: ignore[return-value]


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """The photo's header, read and checked: format and pixel count (nothing decoded yet)."""
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
    return image


def _resize_float(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    resized = F.resize(pixels.float(), list(size), antialias=True)
    return resized.round_().clamp_(0, 255).to(torch.uint8)
