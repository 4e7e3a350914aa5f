"""Calibration: a temperature that makes the served probabilities mean what they say.

Temperature scaling (Guo et al., 2017, "On calibration of modern neural networks") divides
the logits by one number ``T > 0`` before the softmax. It is fitted on validation photos by
minimising their negative log-likelihood; it never changes the likeliest count, only how
sure the model says it is (a median-decoded count can move where the mass is spread). The
card stores ``T`` and the predictor applies it on every path
(``model.predictor.probabilities_from_logits``).

Fitted at the end of training (``calibrate_training_run``) and on an existing artifact
(``calibrate_artifact``: ``bincheck calibrate``), on the model's own validation photos.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from model.artifact import Network, read_artifact, write_artifact
from model.card import ModelCard
from model.predictor import Predictor, probabilities_from_logits

from .data import Example, read_labels, split
from .paired import ServedPhotos

ECE_BINS = 15
CALIBRATED = "-calibrated"  # the version suffix of a calibrated artifact, by default
TEMPERATURE_RANGE = (0.05, 20.0)  # searched on a log scale; a fit at an end says so


@dataclass(frozen=True)
class Scores:
    """The network's logits ``(N, K + 1)`` for some photos, and their classes ``0..K``."""

    logits: torch.Tensor
    labels: torch.Tensor


def negative_log_likelihood(scores: Scores, temperature: float) -> float:
    logits = scores.logits.double() / temperature
    return torch.nn.functional.cross_entropy(logits, scores.labels).item()


def fit_temperature(scores: Scores, bounds: tuple[float, float] = TEMPERATURE_RANGE) -> float:
    """The ``T`` in ``bounds`` minimising the negative log-likelihood of ``softmax(z / T)``.

    The likelihood is convex in ``1 / T``, so it has one minimum along ``log T``: a
    golden-section search finds it, deterministically, to a relative 1e-6.
    """
    low, high = math.log(bounds[0]), math.log(bounds[1])
    golden = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return negative_log_likelihood(scores, math.exp(log_t))

    a, b = high - golden * (high - low), low + golden * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    while high - low > 1e-6:
        if loss_a <= loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - golden * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + golden * (high - low)
            loss_b = loss(b)
    return math.exp((low + high) / 2)


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS
) -> float:
    """Top-label ECE: the photos binned by the probability of their likeliest count into
    ``bins`` equal-width bins ``((b - 1) / bins, b / bins]``; the mean over photos of each
    bin's gap between accuracy (likeliest count = true class) and mean confidence:

        ECE = sum over bins B of |B| / N * |accuracy(B) - confidence(B)|

    0 is perfectly calibrated. It judges the probabilities, so it uses the likeliest count
    whatever the card's decoding.
    """
    confidence, likeliest = probabilities.double().max(dim=1)
    correct = (likeliest == labels).double()
    which = (confidence * bins).ceil().long().clamp(1, bins) - 1
    gap = torch.zeros(bins, dtype=torch.double).index_add_(0, which, correct - confidence)
    return (gap.abs().sum() / len(labels)).item()


def ece_at(scores: Scores, temperature: float) -> float:
    probabilities = probabilities_from_logits(scores.logits, temperature)
    return expected_calibration_error(probabilities, scores.labels)


def calibration_report(
    validation: Scores | None,
    held_out: dict[str, Scores],
    *,
    temperature_before: float = 1.0,
    not_fitted: str | None = None,
) -> dict[str, Any]:
    """``temperature``, fitted on ``validation`` (kept at 1.0 without it, ``not_fitted``
    saying why), and each photo set's ECE before (at ``temperature_before``) and after."""
    # Rounded as the card stores it, so the figures after are those of the served model.
    temperature = round(fit_temperature(validation), 6) if validation is not None else 1.0
    report: dict[str, Any] = {
        "temperature": temperature,
        "temperature_before": temperature_before,
        "fitted": validation is not None,
    }
    if validation is None:
        report["not_fitted"] = not_fitted or "no validation photos"
    elif not TEMPERATURE_RANGE[0] * 1.001 < temperature < TEMPERATURE_RANGE[1] / 1.001:
        report["at_search_bound"] = True  # the likelihood still fell at the range's end
    report["ece_bins"] = ECE_BINS
    sets = {"val": validation} if validation is not None else {}
    for name, scores in (sets | held_out).items():
        report[name] = {
            "photos": len(scores.labels),
            "ece_before": round(ece_at(scores, temperature_before), 4),
            "ece_after": round(ece_at(scores, temperature), 4),
            "nll_before": round(negative_log_likelihood(scores, temperature_before), 4),
            "nll_after": round(negative_log_likelihood(scores, temperature), 4),
        }
    return report


@torch.inference_mode()
def network_scores(model: nn.Module, loader: DataLoader, device: torch.device) -> Scores:
    """Logits of a training run's photos (a PhotoDataset loader, no augmentation)."""
    model.eval()
    logits, labels = [], []
    for images, targets in loader:
        logits.append(model(images.to(device)).float().cpu())
        labels.append(targets)
    return Scores(torch.cat(logits), torch.cat(labels))


def calibrate_training_run(
    model: nn.Module,
    loaders: dict[str, DataLoader],
    device: torch.device,
    *,
    not_fitted: str | None = None,
) -> dict[str, Any]:
    """At the end of training: the temperature of the shipped weights, fitted on the
    validation photos unless ``not_fitted`` says why not, and ECE on the test photos."""
    validation = None if not_fitted else network_scores(model, loaders["val"], device)
    held_out = {"test": network_scores(model, loaders["test"], device)} if "test" in loaders else {}
    return calibration_report(validation, held_out, not_fitted=not_fitted)


def validation_split_seed(card: ModelCard) -> int:
    """The seed of the split the model validated on; ValueError if its card names none."""
    training = card.training
    hyperparameters = training.get("hyperparameters", {})
    if hyperparameters.get("refit") == "True":
        raise ValueError(
            f"{card.version} is a refit: it trained on its validation photos, so none are "
            "left to calibrate it on"
        )
    if hyperparameters.get("train", "None") != "None" and hyperparameters.get("val") == "None":
        raise ValueError(
            f"{card.version} validated on its training photos (--train without --val): none "
            "are held out to calibrate it on"
        )
    if "split_seed" not in training or not training.get("examples", {}).get("val"):
        raise ValueError(
            f"{card.version}'s card names no validation split (training.split_seed and "
            "training.examples.val): its validation photos are unknown"
        )
    return int(training["split_seed"])


def served_scores(
    predictor: Predictor,
    folder: Path,
    examples: list[Example],
    batch_size: int = 32,
    *,
    workers: int = 0,
) -> Scores:
    """Logits of ``examples``' photos decoded as the predictor serves them."""
    photos = ServedPhotos(folder, examples, predictor.decoder)
    batches = DataLoader(photos, batch_size=batch_size, num_workers=workers)
    logits = torch.cat([predictor.logits(list(batch)) for batch in batches])
    labels = torch.tensor([min(e.count, predictor.card.max_count) for e in examples])
    return Scores(logits, labels)


def calibrate_artifact(
    model_path: Path,
    folder: Path,
    out: Path,
    *,
    version: str | None = None,
    batch_size: int = 32,
    workers: int = 0,
) -> dict[str, Any]:
    """Fit an artifact's temperature on the validation photos of its own split of
    ``folder`` and write the calibrated artifact to ``out``; the report."""
    if out.resolve() == model_path.resolve():
        raise ValueError(f"--out is the model itself ({out}): write the calibrated one elsewhere")
    model, card = read_artifact(model_path)
    default_version = card.version.removesuffix(CALIBRATED) + CALIBRATED
    calibrated, report = calibrate(
        model,
        dataclasses.replace(card, version=version or default_version),
        folder,
        batch_size=batch_size,
        workers=workers,
    )
    report = {**report, "calibrated_from": card.version}
    calibrated = dataclasses.replace(calibrated, metrics={**card.metrics, "calibration": report})
    write_artifact(out, model, calibrated)
    return {"model_version": calibrated.version, "out": str(out), **report}


def calibrate(
    model: Network, card: ModelCard, folder: Path, *, batch_size: int = 32, workers: int = 0
) -> tuple[ModelCard, dict[str, Any]]:
    """``card`` with the temperature fitted on the validation photos of its own split of
    ``folder`` (the report in its metrics' ``calibration``), and the report."""
    if not folder.is_dir():
        raise ValueError(f"no data folder at {folder}")
    seed = validation_split_seed(card)
    examples = split(read_labels(folder), seed=seed)["val"]
    trained_with = card.training["examples"]["val"]
    if len(examples) != trained_with:
        raise ValueError(
            f"{folder} has {len(examples)} validation photos in split seed {seed}; "
            f"{card.version} validated on {trained_with}: not the folder it was trained on"
        )
    scores = served_scores(Predictor(model, card), folder, examples, batch_size, workers=workers)
    report = calibration_report(scores, {}, temperature_before=card.temperature)
    report |= {"data": str(folder), "split_seed": seed}
    calibrated = dataclasses.replace(
        card,
        temperature=report["temperature"],
        metrics={**card.metrics, "calibration": report},
    )
    return calibrated, report


def describe_calibration(report: dict[str, Any]) -> str:
    """``temperature=1.3123 val_ece=0.0812->0.0321 test_ece=0.0900->0.0400``, one line."""
    parts = [f"temperature={report['temperature']:.4f}"]
    if not report["fitted"]:
        parts.append(f"(not fitted: {report['not_fitted']})")
    for name in ("val", "test"):
        if name in report:
            parts.append(
                f"{name}_ece={report[name]['ece_before']:.4f}->{report[name]['ece_after']:.4f}"
            )
    return " ".join(parts)
