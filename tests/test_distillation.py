"""Distillation (``--teacher``): the loss, the teacher's probabilities with each training
photo, and a training run that learns from a teacher."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset

from model.artifact import read_artifact, write_artifact
from training.data import PhotoDataset, attach_teacher, read_labels, split
from training.losses import CountLoss, DistillationLoss
from training.train import get_args_parser
from training.train import main as train

from .conftest import tiny_run


def test_the_loss_mixes_the_count_loss_and_the_cross_entropy_against_the_teacher():
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    classes = torch.tensor([0, 1, 2, 1])
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.5, 0.5], [1 / 3] * 3])
    targets = torch.cat([classes[:, None].float(), teacher], dim=1)
    count_loss = CountLoss("ce", 3)
    soft = -(teacher * logits.log_softmax(1)).sum(1).mean()

    assert DistillationLoss(count_loss, 0.0)(logits, targets) == pytest.approx(
        F.cross_entropy(logits, classes).item()
    )
    assert DistillationLoss(count_loss, 1.0)(logits, targets) == pytest.approx(soft.item())
    mixed = 0.3 * F.cross_entropy(logits, classes) + 0.7 * soft
    assert DistillationLoss(count_loss, 0.7)(logits, targets) == pytest.approx(mixed.item())
    # Class indices alone (validation photos): the count loss.
    assert DistillationLoss(count_loss, 0.7)(logits, classes) == pytest.approx(
        F.cross_entropy(logits, classes).item()
    )
    # Class weights weigh each photo's soft term as they weigh its count loss.
    weights = torch.tensor([1.0, 0.0, 3.0])
    weighted = DistillationLoss(CountLoss("ce", 3, class_weights=weights), 1.0)
    per_photo = -(teacher * logits.log_softmax(1)).sum(1)
    expected = (per_photo[0] * 1 + per_photo[2] * 3) / 4
    assert weighted(logits, targets) == pytest.approx(expected.item())
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        DistillationLoss(count_loss, 1.5)


def test_each_training_photo_carries_its_class_and_the_teachers_probabilities(split_photos):
    examples = split(read_labels(split_photos))
    first = PhotoDataset(split_photos, examples["train"], (32, 48), 5, cache=False)
    second = PhotoDataset(split_photos, examples["val"], (32, 48), 5, cache=False)
    both = ConcatDataset([first, second])
    probabilities = torch.rand(len(both), 6).softmax(1)

    attach_teacher(both, probabilities)

    image, target = both[len(first)]  # the first photo of the second part
    assert image.dtype == torch.uint8 and target.shape == (7,)
    assert target[0].item() == second.targets[0].item()
    torch.testing.assert_close(target[1:], probabilities[len(first)])
    with pytest.raises(ValueError, match="teacher rows for"):
        attach_teacher(both, probabilities[:-1])


@pytest.fixture(scope="module")
def teacher(split_photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    train(get_args_parser().parse_args(tiny_run(split_photos, out, "--seed", "3")))
    return out / "model.tar.gz"


def test_a_run_learns_from_a_teacher_and_says_so(split_photos, teacher, tmp_path, capsys):
    args = ["--teacher", str(teacher), "--teacher-weight", "0.8"]
    train(get_args_parser().parse_args(tiny_run(split_photos, tmp_path, *args)))

    printed = capsys.readouterr().out
    assert "teacher tiny: probabilities of 14 training photos in" in printed
    assert "weight 0.8" in printed
    card = read_artifact(tmp_path / "model.tar.gz")[1]
    assert card.training["hyperparameters"]["teacher"] == str(teacher)
    assert card.training["hyperparameters"]["teacher_weight"] == "0.8"


def test_a_teacher_that_counts_otherwise_is_refused_before_training(
    split_photos, teacher, tmp_path
):
    model, card = read_artifact(teacher)
    resized = write_artifact(tmp_path / "t.tar.gz", model, replace(card, input_size=(64, 96)))
    with pytest.raises(SystemExit, match=r"--teacher .*counts 0..6 at \(64, 96\)"):
        train(
            get_args_parser().parse_args(
                tiny_run(split_photos, tmp_path, "--teacher", str(resized))
            )
        )
    with pytest.raises(SystemExit, match="--teacher"):
        train(
            get_args_parser().parse_args(
                tiny_run(split_photos, tmp_path, "--teacher", "nope.tar.gz")
            )
        )
