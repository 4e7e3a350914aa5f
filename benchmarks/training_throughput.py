"""Training benchmark: photos/s of training steps, the old path against the new, side by side.

Each configuration trains the default network (the model factory training uses, the default
loss and weight average) on the same photos, decoded once at the input size as training
caches them, through ``engine.train_one_epoch``: loader, augmentation, forward, backward,
optimizer step. Each round trains ``--steps`` steps, after ``--warmup`` steps of its own.
Rounds alternate between the configurations (a, b, c, ..., a, b, c, ...), so a load that
comes and goes on the machine falls on all of them alike:

- per-photo:   ``TrainPreset`` photo by photo in the dataset, float32, contiguous;
- today:       the same, channels-last (the training script before this benchmark);
- batch-aug:   ``BatchAugment`` on each batch instead;
- keep-memory: and glibc keeps freed memory (``speed.keep_freed_memory``);
- amp:         and autocast to ``speed.autocast_dtype`` (bfloat16 on CPUs with AVX-512
  BF16 or AMX, depthwise convolutions in float32): the training script's default.

The allocator setting holds for a whole process, so the configurations with it train in a
second process; one process trains at a time. Prints each round's photos/s, each
configuration's median and its ratio to the first's.

    .venv/bin/python benchmarks/training_throughput.py
    .venv/bin/python benchmarks/training_throughput.py --configs today amp --rounds 5
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from model.artifact import build_model
from model.card import ModelCard
from training.data import PhotoDataset, read_labels
from training.distributed import World
from training.engine import train_one_epoch
from training.losses import CountLoss
from training.presets import BatchAugment, TrainPreset
from training.speed import autocast_dtype, keep_freed_memory

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


class Config(NamedTuple):
    per_photo: bool
    channels_last: bool
    keep_memory: bool
    amp: bool


CONFIGS = {
    "per-photo": Config(per_photo=True, channels_last=False, keep_memory=False, amp=False),
    "today": Config(per_photo=True, channels_last=True, keep_memory=False, amp=False),
    "batch-aug": Config(per_photo=False, channels_last=True, keep_memory=False, amp=False),
    "keep-memory": Config(per_photo=False, channels_last=True, keep_memory=True, amp=False),
    "amp": Config(per_photo=False, channels_last=True, keep_memory=True, amp=True),
}


class Augmented(Dataset):
    """``photos`` with ``transform`` applied photo by photo, as the dataset did."""

    def __init__(self, photos: Dataset, transform: TrainPreset) -> None:
        self.photos, self.transform = photos, transform

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, target = self.photos[index]
        return self.transform(image), target


class Trainer:
    """One configuration's own copy of the network, optimizer and weight average."""

    def __init__(
        self, config: Config, model: torch.nn.Module, photos: Dataset, args: argparse.Namespace
    ) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        size = (args.height, args.width)
        self.format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = copy.deepcopy(model).to(self.device, memory_format=self.format)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.05)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        self.amp = autocast_dtype(self.device) if config.amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.ema = AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True
        )
        self.loss = CountLoss("ordinal", 7).to(self.device)
        self.loader = DataLoader(
            Augmented(photos, TrainPreset(size)) if config.per_photo else photos,
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
        )
        self.augment = None if config.per_photo else BatchAugment(size)

    def train(self, steps: int) -> float:
        """Photos/s of ``steps`` training steps."""
        return train_one_epoch(
            self.model,
            self.loader,
            self.optimizer,
            self.scheduler,
            self.scaler,
            self.loss,
            self.device,
            steps,
            World(),
            self.ema,
            augment=self.augment,
            amp=self.amp,
            memory_format=self.format,
        ).samples_per_s


def load_photos(folders: list[Path], count: int, size: tuple[int, int]) -> Dataset:
    """``count`` photos in all, an equal share from each folder, decoded at ``size``."""
    parts = []
    for i, folder in enumerate(folders):
        share = count // len(folders) + (i < count % len(folders))
        parts.append(PhotoDataset(folder, read_labels(folder)[:share], size, max_count=6))
    return ConcatDataset(parts)


def serve(args: argparse.Namespace) -> None:
    """A training process: warms its configurations up, then trains ``NAME STEPS`` as
    asked on stdin and answers ``rate PHOTOS_PER_S``."""
    if CONFIGS[args.configs[0]].keep_memory:
        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = (args.height, args.width)
    card = ModelCard(
        version="bench", backbone=args.backbone, max_count=6, input_size=size, dropout=0.3
    )
    weights = None if args.weights == "none" else args.weights
    model = build_model(card, weights, drop_path_rate=0.1)
    photos = load_photos(args.data, args.photos, size)
    trainers = {name: Trainer(CONFIGS[name], model, photos, args) for name in args.configs}
    for trainer in trainers.values():
        trainer.train(args.warmup)
    amp = autocast_dtype(next(iter(trainers.values())).device)
    print(f"ready {len(photos)} {torch.get_num_threads()} {amp}", flush=True)
    for line in sys.stdin:
        name, steps = line.split()
        print(f"rate {trainers[name].train(int(steps))}", flush=True)


class Process:
    """A ``serve`` process for configurations that share an allocator setting."""

    def __init__(self, names: list[str], args: argparse.Namespace) -> None:
        command = [sys.executable, __file__, "--serve", "--configs", *names, "--data"]
        command += [*map(str, args.data), "--weights", args.weights, "--backbone", args.backbone]
        for option in ("photos", "height", "width", "batch_size", "warmup", "threads"):
            command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        self.ready = self._answer("ready")

    def _answer(self, kind: str) -> list[str]:
        for line in self.process.stdout:
            if line.startswith(kind + " "):
                return line.split()[1:]
        raise RuntimeError(f"the training process stopped (exit {self.process.wait()})")

    def train(self, name: str, steps: int) -> float:
        self.process.stdin.write(f"{name} {steps}\n")
        self.process.stdin.flush()
        return float(self._answer("rate")[0])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main(args: argparse.Namespace) -> None:
    if args.serve:
        return serve(args)
    groups = {
        keep: [n for n in args.configs if CONFIGS[n].keep_memory == keep] for keep in (False, True)
    }
    processes = {keep: Process(names, args) for keep, names in groups.items() if names}
    photos, threads, amp = next(iter(processes.values())).ready
    print(
        f"{photos} photos at {args.height}x{args.width}, batch {args.batch_size}, "
        f"{threads} threads, amp: {amp}",
        flush=True,
    )
    rates: dict[str, list[float]] = {name: [] for name in args.configs}
    try:
        for round_ in range(1, args.rounds + 1):
            for name in args.configs:
                rates[name].append(processes[CONFIGS[name].keep_memory].train(name, args.steps))
                print(f"round {round_} {name:<12} {rates[name][-1]:7.2f} photos/s", flush=True)
    finally:
        for process in processes.values():
            process.close()
    first = statistics.median(rates[args.configs[0]])
    print(f"\n| configuration | photos/s per round | median | x {args.configs[0]} |")
    print("| --- | --- | --- | --- |")
    for name, values in rates.items():
        median = statistics.median(values)
        rounds = " / ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {rounds} | {median:.2f} | {median / first:.2f}x |")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, nargs="+", default=[SHARED / "data/abid", SHARED / "data/abid-224"]
    )
    parser.add_argument("--photos", type=int, default=512)
    parser.add_argument(
        "--weights",
        default=str(SHARED / "weights/tf_efficientnet_lite0.imagenet.pth"),
        help="pretrained backbone weights, or 'none'",
    )
    parser.add_argument("--backbone", default="timm/tf_efficientnet_lite0")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="training steps a round")
    parser.add_argument("--warmup", type=int, default=2, help="steps before the first round")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
