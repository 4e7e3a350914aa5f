"""Training speed: augmentation by the batch with a draw per photo, mixed precision in the
training step, and the throughput benchmark."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from model.predictor import cpu_has_bfloat16
from training.distributed import World
from training.engine import train_one_epoch
from training.presets import BatchAugment, BatchParams, TrainPreset
from training.speed import autocast, autocast_dtype

from .conftest import SAMPLES, load_benchmark

SIZE = (48, 64)


def photos(batch: int = 8, size: tuple[int, int] = SIZE, seed: int = 0) -> torch.Tensor:
    """Smooth random photos (uint8): bilinear sampling keeps them close, as real photos."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, size[0] // 8, size[1] // 8, generator=generator)
    fine = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear")
    return (fine * 255).round().to(torch.uint8)


def unchanged(batch: int, **changes: torch.Tensor) -> BatchParams:
    """Parameters that change nothing, but for ``changes``."""
    identity = {
        "hflip": torch.zeros(batch, dtype=torch.bool),
        "vflip": torch.zeros(batch, dtype=torch.bool),
        "theta": torch.eye(3)[:2].expand(batch, 2, 3),
        "factors": torch.ones(batch, 3),
        "order": torch.arange(3).expand(batch, 3),
    }
    return BatchParams(**{**identity, **changes})


def test_a_batch_comes_out_as_floats_in_range_at_the_input_size():
    images = photos(8)

    out = BatchAugment(SIZE, strength=2.0)(images)  # stronger than training's default

    assert out.shape == images.shape
    assert out.dtype == torch.float32
    assert out.isfinite().all()
    assert out.min() >= 0 and out.max() <= 1


def test_each_photo_of_a_batch_gets_its_own_draw():
    same = photos(1).expand(16, -1, -1, -1).contiguous()

    out = BatchAugment(SIZE)(same)

    # A transform that drew once for the batch would give 16 equal photos.
    differences = (out[1:] - out[:1]).abs().flatten(1).amax(1)
    assert (differences > 0.05).all()
    params = BatchAugment(SIZE).sample(64, SIZE)
    assert 0 < params.hflip.sum() < 64 and 0 < params.vflip.sum() < 64
    assert len({tuple(f.tolist()) for f in params.factors}) == 64


def test_strength_zero_changes_nothing():
    images = photos(4)

    assert torch.equal(BatchAugment(SIZE, strength=0)(images), images)


def test_parameters_that_change_nothing_give_the_photo_back():
    images = photos(4)

    out = BatchAugment(SIZE).apply(images, unchanged(4))

    assert torch.equal((out * 255).round().to(torch.uint8), images)


def test_flips_are_exact():
    images = photos(4)
    hflip = torch.tensor([True, False, True, False])
    vflip = torch.tensor([False, True, True, False])

    out = BatchAugment(SIZE).apply(images, unchanged(4, hflip=hflip, vflip=vflip))

    out = (out * 255).round().to(torch.uint8)
    assert torch.equal(out[0], images[0].flip(-1))
    assert torch.equal(out[1], images[1].flip(-2))
    assert torch.equal(out[2], images[2].flip(-1).flip(-2))
    assert torch.equal(out[3], images[3])


def test_colour_factors_scale_each_photo_by_its_own_factor():
    gray = torch.full((3, 3, *SIZE), 100, dtype=torch.uint8)
    brightness = torch.tensor([[0.7, 1, 1], [1.3, 1, 1], [1, 1, 1]])

    out = BatchAugment(SIZE).apply(gray, unchanged(3, factors=brightness))

    assert out[0].mean() * 255 == pytest.approx(70, abs=0.01)
    assert out[1].mean() * 255 == pytest.approx(130, abs=0.01)
    assert out[2].mean() * 255 == pytest.approx(100, abs=0.01)


def test_the_draws_follow_the_per_photo_presets_ranges():
    augment = BatchAugment((240, 320))
    params = augment.sample(4000, (240, 320), torch.Generator().manual_seed(0))

    linear = params.theta[:, :, :2]
    rotated = linear[:, 0, 1].abs() > 1e-6
    assert rotated.float().mean() == pytest.approx(0.5, abs=0.03)  # the affine's p = 0.5
    # The crop alone: a zoom by 1 / sqrt(0.85 .. 1), the aspect ratio within 10%.
    crop = linear[~rotated]
    area = crop[:, 0, 0] * crop[:, 1, 1]
    assert area.min() >= 0.85 - 0.01 and area.max() <= 1 + 1e-6
    aspect = crop[:, 0, 0] / crop[:, 1, 1]
    assert aspect.min() >= 0.9 - 0.01 and aspect.max() <= 1.1 + 0.01
    # Rotations up to 10 degrees: the angle of the matrix, whatever the zoom.
    angles = torch.atan2(linear[rotated, 1, 0] * 240, linear[rotated, 0, 0] * 320).rad2deg()
    assert angles.abs().max() == pytest.approx(10, abs=0.5)
    assert params.factors.min() >= 0.7 and params.factors.max() <= 1.3
    assert len({tuple(o.tolist()) for o in params.order}) == math.factorial(3)


def test_the_batch_draws_match_the_per_photo_presets_spread_of_brightness():
    image = photos(1, seed=3)[0]
    preset = TrainPreset(SIZE)
    torch.manual_seed(0)
    one_by_one = torch.stack([preset(image).float().mean() / 255 for _ in range(400)])
    by_batch = BatchAugment(SIZE)(image.expand(400, -1, -1, -1).contiguous()).mean((1, 2, 3))

    assert by_batch.mean() == pytest.approx(one_by_one.mean().item(), abs=0.02)
    assert by_batch.std() == pytest.approx(one_by_one.std().item(), rel=0.2)


class _Recorder(torch.nn.Module):
    """A linear model that keeps what its forward pass saw and computed."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3 * 4 * 4, 2)
        self.seen: list[tuple[torch.dtype, torch.dtype, bool]] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.linear(images.flatten(1).float())
        channels_last = images.is_contiguous(memory_format=torch.channels_last)
        self.seen.append((images.dtype, logits.dtype, channels_last))
        return logits.float()


def _epoch(model: torch.nn.Module, **options) -> None:
    images = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(
        model,
        DataLoader(TensorDataset(images, torch.arange(8) % 2), batch_size=4),
        optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
        torch.amp.GradScaler("cuda", enabled=False),
        torch.nn.CrossEntropyLoss(),
        torch.device("cpu"),
        0,
        World(),
        **options,
    )


def test_the_training_loop_augments_each_batch_and_autocasts_when_asked():
    batches = []

    def augment(images: torch.Tensor) -> torch.Tensor:
        batches.append(images)
        return images.float() / 255

    model = _Recorder()
    _epoch(model, augment=augment, amp=torch.bfloat16)

    assert [b.dtype for b in batches] == [torch.uint8, torch.uint8]  # as the loader gives them
    assert model.seen == [(torch.float32, torch.bfloat16, True)] * 2

    model = _Recorder()
    _epoch(model, memory_format=torch.contiguous_format)
    assert model.seen == [(torch.uint8, torch.float32, False)] * 2


def test_precision_auto_is_bfloat16_where_the_cpu_has_it_and_fp32_is_float32():
    cpu = torch.device("cpu")

    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "auto") == (torch.bfloat16 if cpu_has_bfloat16() else None)
    with pytest.raises(ValueError, match="precision"):
        autocast_dtype(cpu, "fp8")


def test_the_benchmark_trains_each_configuration_in_alternating_rounds(capsys):
    benchmark = load_benchmark("training_throughput")
    args = benchmark.get_args_parser().parse_args([
        "--data", str(SAMPLES), "--photos", "8", "--weights", "none", "--height", "32",
        "--width", "48", "--batch-size", "4", "--rounds", "2", "--steps", "1", "--warmup", "1",
        "--configs", "today", "amp",
    ])  # fmt: skip

    benchmark.main(args)

    out = capsys.readouterr().out
    rounds = [line.split()[2] for line in out.splitlines() if line.startswith("round")]
    assert rounds == ["today", "amp", "today", "amp"]
    assert "| amp |" in out and "x today |" in out


def test_under_cpu_autocast_depthwise_convolutions_run_in_float32_and_the_rest_in_bfloat16():
    depthwise = torch.nn.Conv2d(8, 8, 3, groups=8)
    pointwise = torch.nn.Conv2d(8, 4, 1)
    seen = []
    for conv in (depthwise, pointwise):
        conv.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    images = torch.rand(2, 8, 6, 6)

    with autocast(torch.device("cpu"), torch.bfloat16):
        pointwise(depthwise(images))

    assert seen == [torch.bfloat16, torch.bfloat16]  # each hands on bfloat16 as autocast does
    # The depthwise convolution in float32: exactly what it gives outside autocast.
    with autocast(torch.device("cpu"), torch.bfloat16):
        inside = depthwise(images)
    assert torch.equal(inside, depthwise(images).to(torch.bfloat16))


KEPT = """
import torch
from training.speed import keep_freed_memory

def resident():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

if {keep}:
    assert keep_freed_memory()
before = resident()
block = torch.ones(50_000_000)  # 200 MB
del block
print(resident() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="Linux only")
def test_kept_memory_stays_with_the_process_for_the_next_tensors():
    def held_after_free(keep: bool) -> int:
        code = KEPT.format(keep=keep)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    assert held_after_free(False) < 50e6  # glibc unmapped it
    assert held_after_free(True) > 190e6
