"""Train the counting model, locally (``bincheck train``) or as a SageMaker training job.

SageMaker's contract, each read with a local fallback: hyperparameters are the command-line
arguments; data channels ``SM_CHANNEL_TRAIN``/``SM_CHANNEL_VALIDATION``/``SM_CHANNEL_TEST``
(data folders), or one ``SM_CHANNEL_DATA`` folder split deterministically, and
``SM_CHANNEL_EXTRA``, ``SM_CHANNEL_EXTRA1``, ... (``--extra-train``: folders trained on
only, whatever their split); the model goes to ``SM_MODEL_DIR`` (SageMaker tars it into
``model.tar.gz``), figures and plots to
``SM_OUTPUT_DATA_DIR``, checkpoints to ``/opt/ml/checkpoints/<job>`` (kept in S3 by managed spot
training). A restarted job resumes from its checkpoint by itself. Each epoch prints

    epoch=N train_loss=... val_loss=... val_accuracy=... val_off_by_one=... val_rmse=... val_mae=...
        train_s=... samples_per_s=... data_wait_s=... data_wait_share=...

(one line) for the tuning job's metric regexes, and writes the same figures to
``metrics.json``: the last four are the epoch's training wall time, the training photos
trained on per second of it, and the time the loop waited for the data loader's batches,
in seconds and as a share of the training time (``engine.train_one_epoch``).

``--refit`` is the final fit once a recipe and its epoch count are chosen: it trains on the
training and validation photos together for ``--epochs`` epochs, validates nothing (each
line has no ``val_`` figures) and ships the last epoch's weights.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import shlex
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler

from model.artifact import build_model, read_artifact, write_artifact, write_artifact_dir
from model.card import ModelCard
from model.counts import DECODINGS
from model.layout import CARD
from model.predictor import Predictor

from .calibration import calibrate_training_run, describe_calibration
from .checkpoint import current_job, load_checkpoint, save_checkpoint
from .data import (
    PhotoDataset,
    attach_teacher,
    fits_in_memory,
    is_cached,
    photos_by_folder,
    read_extra_folders,
    read_labels,
    split,
    targets_of,
)
from .distributed import World, check_replicas_agree, init_world
from .engine import evaluate, train_one_epoch, warmup_cosine
from .losses import (
    LOSSES,
    CountLoss,
    DistillationLoss,
    balanced_class_weights,
    prior_matching_weights,
)
from .metrics import bootstrap_intervals, confusion_matrix
from .paired import describe_differences, score_against
from .plots import plot_training
from .presets import BatchAugment
from .speed import PRECISIONS, autocast_dtype, keep_freed_memory
from .teacher import read_teacher, teacher_probabilities

LINE_FIGURES = ("accuracy", "off_by_one", "rmse", "mae")
SAGEMAKER_CHECKPOINTS = Path("/opt/ml/checkpoints")


def _flag(value: str) -> bool:
    """A switch given alone (``--tta``) or with a value, as SageMaker passes every
    hyperparameter (``--tta True``)."""
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _env_paths(name: str) -> list[Path]:
    """The folders in ``name``, ``name1``, ``name2``, ..., in that order: SageMaker's
    variables for the channels ``extra``, ``extra1``, ``extra2``, ... (the pipeline's
    ``extra_data``, ``lambdas/retraining/plan.py``)."""
    numbered = []
    for key, value in os.environ.items():
        suffix = key.removeprefix(name)
        if key.startswith(name) and value and (suffix == "" or suffix.isdigit()):
            numbered.append((int(suffix or 0), Path(value)))
    return [path for _, path in sorted(numbered)]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train the bin counting model")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        type=Path,
        default=_env_path("SM_CHANNEL_DATA"),
        help="one data folder, split 70/15/15 by count (deterministic)",
    )
    data.add_argument("--train", type=Path, default=_env_path("SM_CHANNEL_TRAIN"))
    data.add_argument("--val", type=Path, default=_env_path("SM_CHANNEL_VALIDATION"))
    data.add_argument("--test", type=Path, default=_env_path("SM_CHANNEL_TEST"))
    data.add_argument(
        "--extra-train",
        type=Path,
        nargs="+",
        default=_env_paths("SM_CHANNEL_EXTRA"),
        metavar="DIR",
        help="more data folders whose every labelled photo is trained on (their split "
        "columns ignored); validation and test photos come from --data (or --val/--test) "
        "alone",
    )
    data.add_argument("--split-seed", type=int, default=0)
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--model-dir",
        type=Path,
        default=_env_path("SM_MODEL_DIR"),
        help="SageMaker's model folder; locally OUTPUT/model.tar.gz is written",
    )
    out.add_argument(
        "--output-dir", type=Path, default=_env_path("SM_OUTPUT_DATA_DIR") or Path("output")
    )
    out.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="default /opt/ml/checkpoints on SageMaker, else OUTPUT/checkpoints",
    )
    out.add_argument("--version", default=None, help="model version (default: a timestamp)")
    out.add_argument(
        "--against",
        type=Path,
        default=_env_path("SM_CHANNEL_PRODUCTION"),
        help="another model (model.tar.gz, or a folder holding one): scored on the same test "
        "photos, with paired differences in metrics.json (the pipeline's promotion reads "
        "them)",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--backbone", default="timm/tf_efficientnet_lite0")
    net.add_argument(
        "--weights",
        default="download",
        help="'download' (the library's pretrained weights), a file, or 'none'",
    )
    net.add_argument("--max-count", type=int, default=6, help="K: counts 0..K-1 and 'K or more'")
    net.add_argument("--height", type=int, default=240)
    net.add_argument("--width", type=int, default=320)
    net.add_argument("--dropout", type=float, default=0.3)
    net.add_argument("--drop-path", type=float, default=0.1)
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=15)
    opt.add_argument("--batch-size", type=int, default=32)
    opt.add_argument("--lr", type=float, default=1e-3)
    opt.add_argument("--backbone-lr-scale", type=float, default=0.3)
    opt.add_argument(
        "--freeze-backbone",
        type=_flag,
        nargs="?",
        const=True,
        default=False,
        help="train the head only, on the pretrained features as they are (weights and "
        "BatchNorm statistics): the published pipelines' recipe",
    )
    opt.add_argument(
        "--probe-epochs",
        type=int,
        default=0,
        help="train the head alone on the frozen backbone for this many epochs, then "
        "everything, the backbone with its own warmup (LP-FT)",
    )
    opt.add_argument("--weight-decay", type=float, default=0.05)
    opt.add_argument("--warmup-epochs", type=float, default=1.0)
    opt.add_argument(
        "--ema-epochs",
        type=float,
        default=2.3,
        help="evaluate and ship an exponential moving average of the weights spanning about "
        "this many epochs, whatever the data set's size (0 = off; 2.3 epochs of the shared "
        "photos are about 100 steps, a per-step decay of 0.99)",
    )
    opt.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        help="the average's per-step decay, instead of --ema-epochs (0 = off)",
    )
    opt.add_argument("--loss", choices=LOSSES, default="ordinal")
    opt.add_argument(
        "--sigma",
        type=float,
        default=0.75,
        help="ordinal loss: label spread; 0 = the true count alone (cross-entropy plus the "
        "ranked probability score)",
    )
    opt.add_argument(
        "--extra-prior",
        choices=("main", "own"),
        default="main",
        help="main: weigh the classes so the photos trained on count as often as the main "
        "folder's training photos (extra folders add photos, not another mix of counts); "
        "own: every photo weighs the same",
    )
    opt.add_argument(
        "--teacher",
        type=Path,
        help="a model.tar.gz (an ensemble, say) whose probabilities for each training photo "
        "the network learns too: distillation",
    )
    opt.add_argument(
        "--teacher-weight",
        type=float,
        default=0.5,
        help="with --teacher: the share of the loss that is the teacher's (the rest is the "
        "count loss on the true count)",
    )
    opt.add_argument("--label-smoothing", type=float, default=0.0)
    opt.add_argument(
        "--class-balance",
        type=float,
        default=0.5,
        help="0 no reweighting .. 1 inverse class frequency",
    )
    opt.add_argument("--augment", type=float, default=1.0, help="augmentation strength, 0 = none")
    opt.add_argument(
        "--refit",
        type=_flag,
        nargs="?",
        const=True,
        default=False,
        help="train on the training and validation photos together for --epochs epochs and "
        "ship the last epoch (no validation, no early stopping): the final fit of a recipe "
        "whose epoch count was chosen on validation",
    )
    opt.add_argument("--patience", type=int, default=5, help="early stopping, in epochs")
    opt.add_argument(
        "--select",
        default="accuracy",
        choices=(*LINE_FIGURES, "loss"),
        help="the validation figure that picks the best epoch (loss: the training loss on "
        "the validation photos, lowest)",
    )
    opt.add_argument("--decoding", choices=DECODINGS, default="median")
    opt.add_argument(
        "--tta",
        type=_flag,
        nargs="?",
        const=True,
        default=False,
        help="average with the mirrored photo",
    )
    opt.add_argument(
        "--cache-gb",
        type=float,
        default=8.0,
        help="decode the photos once and keep them in memory (each process) when they fit "
        "in this many GB; otherwise decode them as they are read",
    )
    opt.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data loading processes (default: none for photos in memory, else up to 8 "
        "per GPU or process, from the CPU cores)",
    )
    opt.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: training steps autocast to bfloat16 on CPUs with AVX-512 BF16 or AMX and "
        "on GPUs that have it, to float16 on older GPUs; fp32: float32 throughout",
    )
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--max-steps", type=int, default=0, help="per epoch, 0 = all (tests)")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    world = init_world()
    torch.manual_seed(args.seed + world.rank)
    device = torch.device(f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu")
    checkpoints = args.checkpoint_dir or checkpoint_folder(args.output_dir)
    card = card_from_args(args)
    # Read before hours of training: an unreadable model to compare with fails the job now.
    against = read_against(args.against) if args.against and world.is_main else None
    teacher = _read_teacher(args, card, device)
    amp = autocast_dtype(device, args.precision)
    if device.type == "cpu":
        keep_freed_memory()
    _log(
        world,
        f"training on {world.size} process(es), {device}, autocast to {amp or 'none (float32)'}, "
        f"checkpoints in {checkpoints}",
    )
    sets = load_data(args, card)
    _log(
        world,
        f"{sum(map(len, sets.values()))} photos "
        + (
            "decoded once and kept in memory"
            if is_cached(sets["train"])
            else f"over --cache-gb {args.cache_gb:g}: decoded as they are read"
        ),
    )
    loaders = make_loaders(args, sets, world)
    weights = None if args.weights == "none" else args.weights
    model = build_model(card, weights, drop_path_rate=args.drop_path)
    model = model.to(device, memory_format=torch.channels_last)
    class_weights = class_weights_for(sets["train"], args)
    _log(world, "class weights: " + " ".join(f"{weight:.3f}" for weight in class_weights.tolist()))
    loss_fn: nn.Module = CountLoss(
        args.loss,
        args.max_count + 1,
        class_weights=class_weights.to(device),
        label_smoothing=args.label_smoothing,
        sigma=args.sigma,
    ).to(device)
    if teacher is not None:
        predictor, version = teacher
        probabilities, seconds = teacher_probabilities(predictor, sets["train"])
        attach_teacher(sets["train"], probabilities)
        loss_fn = DistillationLoss(loss_fn, args.teacher_weight)
        _log(
            world,
            f"teacher {version}: probabilities of {len(probabilities)} training photos in "
            f"{seconds:.0f} s, weight {args.teacher_weight:g}",
        )
    optimizer = torch.optim.AdamW(
        [
            {"params": model.head.parameters(), "lr": args.lr},
            {"params": model.backbone.parameters(), "lr": args.lr * args.backbone_lr_scale},
        ],
        weight_decay=args.weight_decay,
    )
    # Epochs the backbone stays frozen: all of them with --freeze-backbone.
    probe_epochs = args.epochs if args.freeze_backbone else args.probe_epochs
    steps_per_epoch = (
        len(loaders["train"]) if not args.max_steps else min(args.max_steps, len(loaders["train"]))
    )
    scheduler = warmup_cosine(
        optimizer,
        args.warmup_epochs * steps_per_epoch,
        args.epochs * steps_per_epoch,
        starts=[0, probe_epochs * steps_per_epoch],
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    decay = ema_decay(args, steps_per_epoch)
    if decay > 0:
        _log(world, f"weight average: decay {decay:.5f} per step, {steps_per_epoch} steps an epoch")
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        if decay > 0
        else None
    )
    evaluated = ema.module if ema is not None else model  # the weights that are judged and shipped
    # Each batch, each photo its own draw, on the device in the training loop.
    augment = BatchAugment(card.input_size, args.augment) if args.augment > 0 else None

    state = {"epoch": 0, "history": [], "best": None, "best_state": None, "stale": 0}
    saved = load_checkpoint(checkpoints, job=current_job())
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        state = saved["state"]
        card = ModelCard(**{**card.__dict__, "version": saved["version"]})
        _log(world, f"resuming from {checkpoints}: epoch {state['epoch']} was the last completed")
    trained, frozen = model, None

    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        if frozen != (epoch <= probe_epochs):
            # DDP syncs the parameters that train when it is built: rebuild it on a change.
            frozen = epoch <= probe_epochs
            model.backbone.requires_grad_(not frozen)
            trained = DistributedDataParallel(model) if world.distributed else model
        if isinstance(loaders["train"].sampler, DistributedSampler):
            loaders["train"].sampler.set_epoch(epoch)
        trained_epoch = train_one_epoch(
            trained,
            loaders["train"],
            optimizer,
            scheduler,
            scaler,
            loss_fn,
            device,
            args.max_steps,
            world,
            ema,
            augment=augment,
            amp=amp,
        )
        if world.is_main:
            figures: dict[str, Any] = {"epoch": epoch, "train_loss": trained_epoch.loss}
            if not args.refit:
                val = evaluate(evaluated, loaders["val"], loss_fn, device, card, tta=args.tta)
                figures["val_loss"] = val["loss"]
                figures.update({f"val_{k}": val["metrics"][k] for k in LINE_FIGURES})
            figures.update(trained_epoch.throughput())
            state["history"].append(figures)
            # A refit ships its last epoch.
            better = (
                args.refit or state["best"] is None or _better(figures, state["best"], args.select)
            )
            if better:
                state["best"], state["best_state"], state["stale"] = (
                    figures,
                    copy.deepcopy(evaluated.state_dict()),
                    0,
                )
            else:
                state["stale"] += 1
            state["epoch"] = epoch
            save_checkpoint(
                checkpoints,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "state": state,
                    "version": card.version,
                    "job": current_job(),
                    "args": vars(args),
                },
            )
            print(" ".join(f"{k}={_fmt(v)}" for k, v in figures.items()), flush=True)
            write_json(
                args.output_dir / "metrics.json",
                {"epochs": state["history"], "best": state["best"]},
            )
        stop = _broadcast_stop(world, state["stale"] >= args.patience if world.is_main else False)
        if stop:
            _log(
                world, f"early stop: no better validation {args.select} for {args.patience} epochs"
            )
            break

    if world.distributed:
        check_replicas_agree(model)
    result: dict[str, Any] = {}
    if world.is_main:
        result = finish(args, evaluated, card, state, loaders, loss_fn, device, against)
    if world.distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def _read_teacher(
    args: argparse.Namespace, card: ModelCard, device: torch.device
) -> tuple[Predictor, str] | None:
    if args.teacher is None:
        return None
    try:
        return read_teacher(args.teacher, card, device)
    except (OSError, ValueError, KeyError, RuntimeError, tarfile.TarError) as error:
        raise SystemExit(f"--teacher {args.teacher}: {error}") from error


def checkpoint_folder(output_dir: Path, sagemaker: Path = SAGEMAKER_CHECKPOINTS) -> Path:
    """``OUTPUT/checkpoints``, or on SageMaker ``/opt/ml/checkpoints/<job name>``.

    SageMaker keeps that folder in the job's ``CheckpointConfig.S3Uri``, which the trials
    of a tuning job share, and its documentation does not say whether each trial gets a
    folder of its own there. With one folder per job name, trials cannot overwrite each
    other's checkpoint either way, and a spot restart, which keeps the name, finds its own.
    """
    if not sagemaker.parent.is_dir():
        return output_dir / "checkpoints"
    job = current_job()
    return sagemaker / job if job else sagemaker


def ema_decay(args: argparse.Namespace, steps_per_epoch: int) -> float:
    """The weight average's per-step decay: ``--ema-decay``, or the one whose average spans
    ``--ema-epochs`` (a fixed decay would span a fraction of an epoch on a large data set:
    100 steps of ABID's 10,000 a moderate-split epoch at batch 32)."""
    if args.ema_decay is not None:
        return args.ema_decay
    if args.ema_epochs <= 0:
        return 0.0
    return 1 - 1 / max(1.0, args.ema_epochs * steps_per_epoch)


def card_from_args(args: argparse.Namespace) -> ModelCard:
    """The card of the network these arguments train (before training fills it in)."""
    return ModelCard(
        version=args.version or time.strftime("counter-%Y%m%d-%H%M%S"),
        backbone=args.backbone,
        max_count=args.max_count,
        input_size=(args.height, args.width),
        dropout=args.dropout,
        decoding=args.decoding,
    )


def class_weights_for(trained: Dataset, args: argparse.Namespace) -> torch.Tensor:
    """The loss's class weights: ``--class-balance``'s tilt from the main folder's mix of
    counts, and, with ``--extra-prior main``, the weights that give the extra folders'
    photos that mix too."""
    classes = args.max_count + 1
    if not args.extra_train or args.extra_prior == "own":
        return balanced_class_weights(targets_of(trained), classes, args.class_balance)
    main = targets_of(trained, leaving_out=args.extra_train)
    return prior_matching_weights(targets_of(trained), main, classes) * balanced_class_weights(
        main, classes, args.class_balance
    )


def load_data(args: argparse.Namespace, card: ModelCard) -> dict[str, Dataset]:
    """The train/val/test datasets; a refit trains on train and val together. Every photo of
    each ``--extra-train`` folder is trained on, bound to its own folder (ids may repeat
    across folders); validation and test photos come from the main folder alone."""
    if args.train:
        # Without a validation channel, validate on the training photos (a refit has none).
        val = args.val or (None if args.refit else args.train)
        folders = {"train": args.train, "val": val, "test": args.test}
        parts = {name: read_labels(folder) if folder else [] for name, folder in folders.items()}
    elif args.data:
        folders = dict.fromkeys(("train", "val", "test"), args.data)
        parts = split(read_labels(args.data), seed=args.split_seed)
    else:
        raise SystemExit("no data: pass --data DIR (or --train/--val), or run as a SageMaker job")
    # A refit's figures come from the test photos alone.
    for needed in ("train", "test") if args.refit else ("train", "val"):
        if not parts.get(needed):
            raise SystemExit(
                f"no {needed} photos: the folder is too small to split, or name "
                "the split of each photo in a 'split' column of labels.csv"
                + (" (a refit reports on test photos: pass --test)" if args.train else "")
            )
    try:  # before any photo is decoded
        extras = read_extra_folders(args.extra_train, [f for f in folders.values() if f])
    except ValueError as error:
        raise SystemExit(f"--extra-train: {error}") from error
    trained_on = ("train", "val") if args.refit else ("train",)
    preset = None  # training batches are augmented in the loop (presets.BatchAugment)
    photos = sum(map(len, parts.values())) + sum(map(len, extras.values()))
    cache = fits_in_memory(photos, card.input_size, args.cache_gb)
    sets: dict[str, Dataset] = {
        name: PhotoDataset(
            folders[name],
            examples,
            card.input_size,
            card.max_count,
            transform=preset if name in trained_on else None,
            cache=cache,
        )
        for name, examples in parts.items()
        if examples
    }
    training = [sets["train"], *([sets.pop("val")] if args.refit and "val" in sets else [])]
    training += [
        PhotoDataset(
            folder, examples, card.input_size, card.max_count, transform=preset, cache=cache
        )
        for folder, examples in extras.items()
    ]
    if len(training) > 1:
        sets["train"] = ConcatDataset(training)
    return sets


def make_loaders(
    args: argparse.Namespace, sets: dict[str, Dataset], world: World
) -> dict[str, DataLoader]:
    workers = args.workers
    if workers is None:  # decoding is the work: processes, not the GPU's time
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        workers = 0 if is_cached(sets["train"]) else min(8, (os.cpu_count() or 1) // local)
    options = {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": torch.cuda.is_available(),  # the copy to the GPU overlaps the step
    }
    sampler = (
        DistributedSampler(sets["train"], world.size, world.rank, seed=args.seed)
        if world.distributed
        else None
    )
    loaders = {
        "train": DataLoader(
            sets["train"],
            batch_size=args.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            drop_last=len(sets["train"]) > args.batch_size,
            **options,
        ),
    }
    for name in ("val", "test"):
        if name in sets:
            loaders[name] = DataLoader(sets[name], batch_size=64, **options)
    return loaders


def finish(
    args: argparse.Namespace,
    model: nn.Module,
    card: ModelCard,
    state: dict[str, Any],
    loaders: dict[str, DataLoader],
    loss_fn: nn.Module,
    device: torch.device,
    against: tuple[nn.Module, ModelCard] | None = None,
) -> dict[str, Any]:
    """Best epoch's weights (a refit's last) -> test figures, the artifact, plots; the
    ``against`` model's figures on the same photos and ours minus its."""
    model.load_state_dict(state["best_state"])
    summary: dict[str, Any] = {"best_epoch": state["best"]["epoch"]}
    if not args.refit:
        summary["validation"] = state["best"]
    # The shipped weights' temperature, fitted on the validation photos: none are held out
    # by a refit, nor without --val (the training photos are validated on).
    not_fitted = (
        "a refit trains on its validation photos"
        if args.refit
        else "validated on its training photos (no --val)"
        if args.train and not args.val
        else None
    )
    summary["calibration"] = calibrate_training_run(model, loaders, device, not_fitted=not_fitted)
    print(f"calibration: {describe_calibration(summary['calibration'])}", flush=True)
    # Test figures as the model serves: at the fitted temperature (median decoding moves).
    card = dataclasses.replace(card, temperature=summary["calibration"]["temperature"])
    report_set = "test" if "test" in loaders else "val"
    final = evaluate(model, loaders[report_set], loss_fn, device, card, tta=args.tta)
    summary[report_set] = final["metrics"]
    summary[f"{report_set}_intervals"] = bootstrap_intervals(
        final["predicted"], final["counts"], card.max_count
    )
    if against is not None:
        photos = loaders[report_set].dataset
        scored = score_against(
            against,
            photos.folder,
            photos.examples,
            final["predicted"],
            final["counts"],
            card,
            workers=loaders[report_set].num_workers,
        )
        summary["against"] = {**scored, "photos": report_set}
    card = ModelCard(
        **{
            **card.__dict__,
            "training": {
                "command": reproducible_command(),
                "data": str(args.data or args.train),
                "split_seed": args.split_seed,
                "examples": {name: len(loader.dataset) for name, loader in loaders.items()},
                "extra_train": [str(folder) for folder in args.extra_train],
                "training_photos": photos_by_folder(loaders["train"].dataset),
                "hyperparameters": {k: str(v) for k, v in vars(args).items()},
            },
            "metrics": summary,
        }
    )
    model = model.cpu().to(memory_format=torch.contiguous_format)
    if args.model_dir:
        write_artifact_dir(args.model_dir, model, card)
    else:
        write_artifact(args.output_dir / "model.tar.gz", model, card)
    write_json(
        args.output_dir / "metrics.json",
        {
            "epochs": state["history"],
            "best": state["best"],
            "training_photos": card.training["training_photos"],
            **summary,
        },
    )
    plot_training(
        args.output_dir,
        state["history"],
        confusion_matrix(final["predicted"], final["counts"], card.max_count),
        report_set,
    )
    print(
        f"{report_set}: " + " ".join(f"{k}={_fmt(v)}" for k, v in final["metrics"].items()),
        flush=True,
    )
    if against is not None:
        versus = summary["against"]
        print(
            f"{report_set}, minus {versus['model_version']}: {describe_differences(versus)}",
            flush=True,
        )
    return summary


def read_against(path: Path) -> tuple[nn.Module, ModelCard]:
    """The model to compare with: a ``model.tar.gz``, its unpacked folder, or a folder
    holding one artifact file (a SageMaker channel; the CDK app's asset is ``<hash>.gz``)."""
    if path.is_dir() and not (path / CARD).is_file():
        found = sorted(p for p in path.iterdir() if p.is_file())
        if len(found) != 1:
            names = [p.name for p in found]
            raise SystemExit(f"--against {path}: expected one model artifact there, found {names}")
        path = found[0]
    try:
        return read_artifact(path)
    except (OSError, ValueError, KeyError, RuntimeError, tarfile.TarError) as error:
        raise SystemExit(f"--against {path}: not a model artifact ({error})") from error


def reproducible_command() -> str:
    """The command line as one would type it again: ``python -m training.train ...``."""
    program = "python -m training.train" if sys.argv[0].endswith("train.py") else sys.argv[0]
    return " ".join([program, *(shlex.quote(a) for a in sys.argv[1:])])


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=2))
    temporary.replace(path)


def _better(candidate: dict[str, float], best: dict[str, float], select: str) -> bool:
    key = f"val_{select}"
    if select in ("rmse", "mae", "loss"):
        return candidate[key] < best[key]
    return (candidate[key], -candidate["val_rmse"]) > (best[key], -best["val_rmse"])


def _broadcast_stop(world: World, stop: bool) -> bool:
    if not world.distributed:
        return stop
    flag = torch.tensor([int(stop)])
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _log(world: World, message: str) -> None:
    if world.is_main:
        print(message, flush=True)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
