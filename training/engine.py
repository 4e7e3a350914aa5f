"""One epoch of training, and evaluation: the loop the training script repeats."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from model.card import ModelCard
from model.counts import decode_counts
from model.predictor import probabilities_from_logits

from .distributed import World
from .metrics import count_metrics
from .speed import autocast


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    warmup: float,
    total: int,
    starts: list[int] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup`` steps, then cosine decay to 0 at step ``total``.

    ``starts`` gives each parameter group the step its schedule starts at (default 0 for
    all); its learning rate is 0 before.
    """

    def schedule(start: int) -> Callable[[int], float]:
        def factor(step: int) -> float:
            step -= start
            if step < 0:
                return 0.0
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1.0, total - start - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        return factor

    starts = starts or [0] * len(optimizer.param_groups)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [schedule(s) for s in starts])


@dataclass(frozen=True)
class EpochTraining:
    """One epoch's pass over the training photos: its mean loss, the photos it trained on
    (all processes together), its wall time, and the part of that time the loop spent
    waiting for the loader's next batch (a process's mean)."""

    loss: float
    photos: int
    seconds: float
    data_wait_s: float

    @property
    def samples_per_s(self) -> float:
        return self.photos / self.seconds

    @property
    def data_wait_share(self) -> float:
        return self.data_wait_s / self.seconds

    def throughput(self) -> dict[str, float]:
        """The speed figures, as the metrics line and ``metrics.json`` name them."""
        return {
            "train_s": self.seconds,
            "samples_per_s": self.samples_per_s,
            "data_wait_s": self.data_wait_s,
            "data_wait_share": self.data_wait_share,
        }


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    loss_fn: nn.Module,
    device: torch.device,
    max_steps: int,
    world: World,
    ema: AveragedModel | None = None,
    *,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    amp: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.channels_last,
) -> EpochTraining:
    """One pass over ``loader``; ``ema``, if given, follows the weights after every step.

    ``augment`` transforms each batch on the device (``presets.BatchAugment``), as part of
    the step; ``amp`` is the dtype the forward pass autocasts to (``speed.autocast_dtype``),
    None for float32; batches go in ``memory_format``, the model's (channels-last: faster
    convolutions on CPU and GPU alike).

    A frozen backbone (no parameter that trains) stays in eval mode, so its BatchNorm
    statistics stay as pretrained: the features are those the pretrained network gives.

    The data wait is the time spent getting the next batch (starting the loader's workers,
    ``next()``, the copy to the device), apart from the forward and backward step. On a GPU
    the step's kernels run asynchronously, but the mixed-precision scaler reads its
    overflow flag from the GPU at every step, after the backward pass: the GPU has at most
    the optimizer's and the weight average's kernels of the step left to run while the
    loop waits for the next batch.
    """
    model.train()
    net = model.module if isinstance(model, DistributedDataParallel) else model
    backbone = getattr(net, "backbone", None)
    if backbone is not None and not any(p.requires_grad for p in backbone.parameters()):
        backbone.eval()
    total = torch.zeros(2, device=device)
    started = time.perf_counter()
    batches = iter(loader)
    waited = time.perf_counter() - started
    steps = 0
    while not max_steps or steps < max_steps:
        asked = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            break
        steps += 1
        images, targets = batch
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        waited += time.perf_counter() - asked
        if augment is not None:
            images = augment(images)
        images = images.contiguous(memory_format=memory_format)
        with autocast(device, amp):
            loss = loss_fn(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(net)
        total += torch.stack(
            [loss.detach() * len(targets), torch.tensor(float(len(targets)), device=device)]
        )
    summed = torch.cat([total.double(), torch.tensor([waited], dtype=torch.double, device=device)])
    if world.distributed:
        torch.distributed.all_reduce(summed)
    loss_sum, photos, waited_sum = summed.tolist()  # waits for the GPU's last step
    return EpochTraining(
        loss=loss_sum / max(photos, 1.0),
        photos=int(photos),
        seconds=time.perf_counter() - started,
        data_wait_s=waited_sum / world.size,
    )


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    device: torch.device,
    card: ModelCard,
    *,
    tta: bool = False,
) -> dict[str, Any]:
    model.eval()
    probabilities, targets, losses = [], [], []
    for images, batch_targets in loader:
        images = images.to(device).contiguous(memory_format=torch.channels_last)
        logits = model(images).float()
        if tta:
            logits = (logits.softmax(1) + model(images.flip(-1)).float().softmax(1)).div(2).log()
        losses.append(loss_fn(logits, batch_targets.to(device)) * len(batch_targets))
        probabilities.append(probabilities_from_logits(logits, card.temperature).cpu())
        targets.append(batch_targets)
    probs = torch.cat(probabilities)
    predicted = decode_counts(probs, card.decoding)
    counts = loader.dataset.counts  # type: ignore[attr-defined]
    return {
        "loss": (torch.stack(losses).sum() / len(counts)).item(),
        "metrics": count_metrics(predicted, counts, card.max_count),
        "probabilities": probs,
        "predicted": predicted,
        "counts": counts,
    }
