"""Ensembles: the mean of the members' probabilities, served on every path, built,
calibrated and scored by ``bincheck ensemble``."""

from __future__ import annotations

import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bincheck.cli import main as bincheck
from model import inference
from model.artifact import build_model, read_artifact, write_artifact
from model.card import ModelCard
from model.network import EnsembleNet
from model.predictor import Predictor
from training.calibration import fit_temperature, served_scores
from training.data import read_labels, split
from training.train import get_args_parser
from training.train import main as train

from .conftest import sample_photo, tiny_run

CARD = ModelCard("e", "timm/tf_efficientnet_lite0", max_count=5, input_size=(96, 128))


def _members(seeds=(0, 1)):
    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        members.append(build_model(CARD))
    return members


def test_the_ensemble_serves_the_mean_of_its_members_probabilities_at_their_temperatures():
    first, second = _members()
    ensemble = EnsembleNet([first, second], [1.0, 2.5]).eval()
    images = torch.randint(0, 256, (3, 3, 96, 128), dtype=torch.uint8)

    card = replace(CARD, members=2, temperature=1.0)
    served = Predictor(ensemble, card).predict(list(images))

    with torch.inference_mode():
        mean = (first.eval()(images).softmax(1) + (second.eval()(images) / 2.5).softmax(1)) / 2
    for prediction, row in zip(served, mean, strict=True):
        assert prediction.probabilities == pytest.approx(row.tolist(), abs=2e-6)
        assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    # The card's temperature applies over the mean, as for one network.
    sharp = Predictor(ensemble, replace(card, temperature=0.5)).predict(list(images))
    expected = (mean.log() / 0.5).softmax(1)
    served_sharp = torch.tensor([p.probabilities for p in sharp])
    torch.testing.assert_close(served_sharp, expected, atol=2e-6, rtol=0)


def test_an_ensemble_refuses_members_it_cannot_average():
    first, second = _members()
    with pytest.raises(ValueError, match="at least 2 members"):
        EnsembleNet([first], [1.0])
    with pytest.raises(ValueError, match="2 members but 1 temperatures"):
        EnsembleNet([first, second], [1.0])
    with pytest.raises(ValueError, match="finite numbers > 0"):
        EnsembleNet([first, second], [1.0, 0.0])
    other = build_model(replace(CARD, max_count=6))
    with pytest.raises(ValueError, match=r"different K: \[5, 6\]"):
        EnsembleNet([first, other], [1.0, 1.0])


def test_an_ensemble_artifact_reads_back_and_serves_alike_on_every_path(tmp_path):
    ensemble = EnsembleNet(_members(), [0.8, 1.7]).eval()
    card = replace(CARD, version="e-2", members=2, temperature=1.3)
    path = write_artifact(tmp_path / "model.tar.gz", ensemble, card)

    model, read = read_artifact(path)
    assert isinstance(model, EnsembleNet) and read.members == 2
    assert model.temperatures.tolist() == pytest.approx([0.8, 1.7])
    photo = sample_photo()
    plain = Predictor(model, read)
    [expected] = plain.predict([plain.decode(photo)])
    [direct] = Predictor(ensemble, card).predict([plain.decode(photo)])
    assert expected == direct

    # The fast path folds every member's BatchNorms; the SageMaker handler serves the same.
    fast = Predictor(*read_artifact(path), fast=True, device="cpu")
    assert fast.folded_norms > 0
    [quick] = fast.predict([fast.decode(photo)])
    assert quick.probabilities == pytest.approx(expected.probabilities, abs=0.03)
    folder = tmp_path / "extracted"
    with tarfile.open(path) as tar:
        tar.extractall(folder, filter="data")
    handler = inference.model_fn(str(folder))
    body, _ = inference.output_fn(
        inference.predict_fn(inference.input_fn(photo, "image/jpeg"), handler), "application/json"
    )
    answer = json.loads(body)
    assert answer["model_version"] == "e-2"
    assert answer["probabilities"] == pytest.approx(
        (quick if handler.fast else expected).probabilities, abs=1e-5
    )


def test_an_ensemble_is_not_trained_from_its_card():
    with pytest.raises(ValueError, match="is an ensemble of 2: it is not trained"):
        build_model(replace(CARD, members=2))
    with pytest.raises(ValueError, match="members must be at least 1"):
        replace(CARD, members=0)


# --- bincheck ensemble -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(split_photos, tmp_path_factory) -> list[Path]:
    runs = []
    for seed in (0, 1):
        out = tmp_path_factory.mktemp(f"run{seed}")
        train(get_args_parser().parse_args(tiny_run(split_photos, out, "--seed", str(seed))))
        runs.append(out / "model.tar.gz")
    return runs


def test_bincheck_ensemble_calibrates_on_validation_and_scores_on_test(
    two_runs,
    split_photos,
    tmp_path,
    capsys,
):
    out = tmp_path / "ensemble.tar.gz"
    members = [str(p) for p in two_runs]

    code = bincheck(
        [
            "ensemble",
            "--members",
            *members,
            "--data",
            str(split_photos),
            "--out",
            str(out),
            "--version",
            "tiny-ensemble",
        ]
    )

    assert code == 0
    model, card = read_artifact(out)
    cards = [read_artifact(p)[1] for p in two_runs]
    assert isinstance(model, EnsembleNet) and card.members == 2
    assert model.temperatures.tolist() == pytest.approx([c.temperature for c in cards], rel=1e-6)
    assert card.version == "tiny-ensemble" and card.input_size == (32, 48)
    assert [m["version"] for m in card.training["members"]] == ["tiny", "tiny"]
    assert card.training["command"].startswith("bincheck ensemble --members")
    # The temperature over the mean, fitted on the 7 validation photos as served.
    examples = split(read_labels(split_photos))["val"]
    unfitted = Predictor(model, replace(card, temperature=1.0))
    assert card.temperature == pytest.approx(
        fit_temperature(served_scores(unfitted, split_photos, examples)), rel=1e-3
    )
    assert card.metrics["calibration"]["val"]["photos"] == 7
    # The card's test figures are those bincheck evaluate gives the written ensemble.
    assert bincheck(["evaluate", "--model", str(out), "--data", str(split_photos),
                     "--out", str(tmp_path / "test.json")]) == 0  # fmt: skip
    report = json.loads((tmp_path / "test.json").read_text())
    assert card.metrics["test"] == report["metrics"] and report["photos"] == 7
    assert card.metrics["test_decisions"] == report["decision_figures"]
    recommended = card.metrics["validation_decisions"]["recommended_thresholds"]
    assert {"match", "mismatch"} <= set(recommended)
    assert card.metrics["validation"]["n_all"] == 7
    printed = capsys.readouterr().out
    assert "tiny-ensemble: 2 members, temperature" in printed
    assert f"written to {out}" in printed


def test_bincheck_ensemble_refuses_members_that_cannot_be_one(
    two_runs,
    split_photos,
    tmp_path,
    capsys,
):
    first, second = two_runs
    model, card = read_artifact(second)
    resized = write_artifact(tmp_path / "resized.tar.gz", model, replace(card, decoding="argmax"))
    other_split = write_artifact(
        tmp_path / "split.tar.gz", model, replace(card, training={**card.training, "split_seed": 3})
    )
    ensemble = tmp_path / "ensemble.tar.gz"
    base = ["ensemble", "--data", str(split_photos), "--version", "v", "--out"]

    def refused(out, *members) -> str:
        assert bincheck([*base, str(out), "--members", *map(str, members)]) == 2
        return capsys.readouterr().err

    assert "differ in decoding: ['argmax', 'median']" in refused(ensemble, first, resized)
    assert "validated on different photos" in refused(ensemble, first, other_split)
    assert "at least 2 members" in refused(ensemble, first)
    assert "no model at" in refused(ensemble, first, tmp_path / "missing.tar.gz")
    assert "is one of the members" in refused(first, first, second)
    assert not ensemble.exists()
    assert bincheck([*base, str(ensemble), "--members", str(first), str(second)]) == 0
    assert "is an ensemble already" in refused(tmp_path / "e2.tar.gz", ensemble, first)
