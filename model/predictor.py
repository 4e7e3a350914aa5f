"""Run the counting network on photos: the plain path and the fast path.

Plain: full decode, float resize, float32, one contiguous batch. Fast: reduced-scale JPEG
decode, uint8 resize, BatchNorm folded into the convolutions, channels-last, and mixed
precision where the hardware has it (bfloat16 on CPUs with AVX-512 BF16 or AMX, float16 on
CUDA). Both run under
``torch.inference_mode``; tests prove they give the same counts on real photos.

Either way the logits become probabilities in one place, ``probabilities_from_logits``:
a softmax of the logits divided by the card's temperature (calibration,
``training/calibration.py``), in float32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .card import ModelCard
from .counts import decode_counts
from .folding import fold_batchnorm
from .images import DEFAULT_MAX_PIXELS, BadInput, decode, decode_batch
from .network import CountingNet, EnsembleNet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    count: int
    probabilities: list[float]
    max_count: int
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "probabilities": self.probabilities,
            "max_count": self.max_count,
            "model_version": self.model_version,
        }


def cpu_has_bfloat16() -> bool:
    """AVX-512 BF16 or AMX: where bfloat16 convolutions are faster than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def probabilities_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``(N, K + 1)`` logits -> probabilities ``softmax(logits / temperature)`` in float32:
    what every path serves. A temperature above 1 flattens the distribution, below 1
    sharpens it; the likeliest count stays the same."""
    return (logits.float() / temperature).softmax(dim=1)


class Predictor:
    def __init__(
        self,
        model: CountingNet | EnsembleNet,
        card: ModelCard,
        *,
        fast: bool = False,
        device: str | torch.device | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.card = card
        self.fast = fast
        self.max_pixels = max_pixels
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval()
        self.autocast_dtype: torch.dtype | None = None
        self.folded_norms = 0
        if fast:
            # Checked on the CPU in float32: a GPU's TF32 convolutions would blur the check.
            probe = torch.randint(
                0, 256, (2, 3, *card.input_size), dtype=torch.uint8, generator=torch.Generator()
            )
            folded = fold_batchnorm(self.model.cpu(), probe)
            if folded is not None:
                self.model, self.folded_norms = folded
            elif any(isinstance(m, torch.nn.BatchNorm2d) for m in self.model.modules()):
                log.warning(
                    "folding BatchNorm changed %s's output: it runs unfolded", card.backbone
                )
            self.model = self.model.to(memory_format=torch.channels_last)
            if self.device.type == "cuda":
                self.autocast_dtype = torch.float16
            elif cpu_has_bfloat16():
                self.autocast_dtype = torch.bfloat16
        self.model = self.model.to(self.device)

    @property
    def precision(self) -> str:
        return str(self.autocast_dtype or torch.float32).removeprefix("torch.")

    @property
    def decodes_on_device(self) -> bool:
        """Fast path on a GPU: photos are decoded there, several in one call."""
        return self.fast and self.device.type == "cuda"

    @property
    def decoder(self) -> Callable[[bytes], torch.Tensor]:
        """``decode`` without the predictor: a function DataLoader workers can run."""
        return functools.partial(
            decode, size=self.card.input_size, reduced=self.fast, max_pixels=self.max_pixels
        )

    def decode(self, data: bytes) -> torch.Tensor:
        return self.decoder(data)

    def decode_many(self, photos: list[bytes]) -> list[torch.Tensor | BadInput]:
        """Each photo decoded, or its refusal in its place."""
        if self.decodes_on_device:
            return decode_batch(
                photos, self.card.input_size, device=self.device, max_pixels=self.max_pixels
            )
        results: list[torch.Tensor | BadInput] = []
        for data in photos:
            try:
                results.append(self.decode(data))
            except BadInput as error:
                results.append(error)
        return results

    def predict_decoded(self, items: list[torch.Tensor | BadInput]) -> list[Prediction | BadInput]:
        """Predictions for the decoded images; each refusal stays in its place."""
        predictions = iter(self.predict([x for x in items if not isinstance(x, BadInput)]))
        return [x if isinstance(x, BadInput) else next(predictions) for x in items]

    def logits(self, images: list[torch.Tensor]) -> torch.Tensor:
        """The network's raw ``(N, K + 1)`` logits for decoded images, on the CPU in float32:
        what the temperature is fitted on."""
        batch = torch.stack(images).to(self.device, non_blocking=True)
        if self.fast:
            batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            return self.model(batch).float().cpu()

    def predict(self, images: list[torch.Tensor]) -> list[Prediction]:
        if not images:
            return []
        probabilities = probabilities_from_logits(self.logits(images), self.card.temperature)
        counts = decode_counts(probabilities, self.card.decoding)
        return [
            Prediction(
                count=int(count),
                probabilities=[round(p, 6) for p in row.tolist()],
                max_count=self.card.max_count,
                model_version=self.card.version,
            )
            for row, count in zip(probabilities, counts, strict=True)
        ]
