"""Calibration: the temperature fit, ECE, the card's temperature as served on every path,
the figures an operator decides by, ``bincheck calibrate`` and the fit at the end of
training."""

from __future__ import annotations

import base64
import json
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bincheck.cli import main as bincheck
from contract.decision import Thresholds
from model import inference
from model.artifact import read_artifact, write_artifact
from model.card import ModelCard
from model.counts import decode_counts
from model.predictor import Prediction, Predictor
from training.calibration import (
    Scores,
    expected_calibration_error,
    fit_temperature,
    served_scores,
)
from training.data import Example, read_labels, split
from training.engine import evaluate
from training.evaluate import evaluate_folder, score_expectations, summary
from training.metrics import decision_figures, paired_decision_differences
from training.train import get_args_parser
from training.train import main as train

from .conftest import SAMPLES, default_model_card, sample_photo, tiny_run

# --- the fit and the error ------------------------------------------------------------------


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_the_fit_recovers_the_temperature_the_labels_were_drawn_at(true_temperature):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 7, generator=generator, dtype=torch.float64) * 3
    drawn = (logits / true_temperature).softmax(1)
    labels = torch.multinomial(drawn, 1, generator=generator).squeeze(1)

    fitted = fit_temperature(Scores(logits, labels))

    assert fitted == pytest.approx(true_temperature, rel=0.05)
    assert fit_temperature(Scores(logits, labels)) == fitted  # deterministic
    # Logits already divided by it need none.
    assert fit_temperature(Scores(logits / fitted, labels)) == pytest.approx(1.0, rel=1e-4)


def test_ece_on_a_case_worked_by_hand():
    probabilities = torch.tensor(
        [
            [0.90, 0.05, 0.05],  # label 0: confidence 0.90, right; 0.90 x 15 = 13.5 -> bin 14
            [0.88, 0.06, 0.06],  # label 1: confidence 0.88, wrong; 13.2 -> bin 14 too
            [0.50, 0.30, 0.20],  # label 0: confidence 0.50, right; 7.5 -> bin 8
            [0.20, 0.45, 0.35],  # label 2: confidence 0.45 (count 1), wrong; 6.75 -> bin 7
        ]
    )
    labels = torch.tensor([0, 1, 0, 2])
    # bin 14: 2/4 x |1/2 - (0.90 + 0.88)/2| = 0.5 x 0.39 = 0.195
    # bin 8:  1/4 x |1 - 0.50| = 0.125;  bin 7: 1/4 x |0 - 0.45| = 0.1125
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.4325)
    # One bin: |accuracy 2/4 - mean confidence (0.90 + 0.88 + 0.50 + 0.45)/4 = 0.6825|
    assert expected_calibration_error(probabilities, labels, bins=1) == pytest.approx(0.1825)
    perfect = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert expected_calibration_error(perfect, torch.tensor([0, 1])) == 0.0


# --- the card and the served probabilities ---------------------------------------------------


def test_the_card_keeps_its_temperature_and_older_cards_read_as_one():
    card = ModelCard(
        version="v", backbone="timm/tf_efficientnet_lite0", max_count=5, input_size=(64, 96)
    )
    calibrated = replace(card, temperature=1.7)
    assert ModelCard.from_json(calibrated.to_json()) == calibrated
    assert ModelCard.from_json(calibrated.to_json()).temperature == 1.7

    older = json.loads(card.to_json())
    del older["temperature"]
    assert ModelCard.from_json(json.dumps(older)).temperature == 1.0
    # The shipped default model is calibrated: its card's temperature is served.
    shipped = ModelCard.from_json(json.dumps(default_model_card()))
    assert shipped.temperature == default_model_card()["metrics"]["calibration"]["temperature"]
    assert shipped.temperature != 1.0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            replace(card, temperature=bad)


def test_the_default_thresholds_are_what_validation_recommends_for_the_shipped_model():
    # The checker's defaults (and so cdk.json's) come from the shipped card, rounded.
    recommended = default_model_card()["metrics"]["validation_decisions"]["recommended_thresholds"]
    assert Thresholds() == Thresholds(
        match=round(recommended["match"], 3), mismatch=round(recommended["mismatch"], 3)
    )


@pytest.mark.parametrize("fast", [False, True])
def test_served_probabilities_are_the_softmax_of_the_logits_over_the_temperature(
    model_artifact, fast
):
    model, card = read_artifact(model_artifact)
    plain = Predictor(model, card, fast=fast)
    warm = Predictor(model, replace(card, temperature=2.0), fast=fast)
    images = [plain.decode(sample_photo(i)) for i in ("00579", "08128")]

    logits = warm.logits(images)
    torch.testing.assert_close(logits, plain.logits(images))  # the same network
    for answer, row in zip(warm.predict(images), logits, strict=True):
        assert answer.probabilities == pytest.approx((row / 2).softmax(0).tolist(), abs=1e-6)
        assert sum(answer.probabilities) == pytest.approx(1.0, abs=1e-5)
    for answer, row in zip(plain.predict(images), logits, strict=True):
        assert answer.probabilities == pytest.approx(row.softmax(0).tolist(), abs=1e-6)
    # Argmax decoding: the temperature never moves the likeliest count.
    assert [a.count for a in warm.predict(images)] == [a.count for a in plain.predict(images)]
    # Median decoding reads the calibrated distribution, which is what the response shows.
    median = Predictor(model, replace(card, temperature=2.0, decoding="median"), fast=fast)
    for answer in median.predict(images):
        served = torch.tensor([answer.probabilities])
        assert answer.count == decode_counts(served, "median").item()


def test_the_sagemaker_handler_serves_the_cards_temperature(model_artifact, tmp_path):
    model, card = read_artifact(model_artifact)
    artifact = write_artifact(tmp_path / "model.tar.gz", model, replace(card, temperature=2.0))
    with tarfile.open(artifact) as tar:
        tar.extractall(tmp_path / "opt-ml-model", filter="data")  # as SageMaker does

    predictor = inference.model_fn(str(tmp_path / "opt-ml-model"))
    photo = sample_photo("00579")
    single = inference.output_fn(
        inference.predict_fn(inference.input_fn(photo, "image/jpeg"), predictor),
        "application/json",
    )
    body = json.dumps({"instances": [{"image_base64": base64.b64encode(photo).decode()}]})
    batch = inference.output_fn(
        inference.predict_fn(inference.input_fn(body, "application/json"), predictor),
        "application/json",
    )

    [logits] = Predictor(model, card).logits([predictor.decode(photo)])
    expected = (logits / 2).softmax(0).tolist()
    for answer in (json.loads(single[0]), json.loads(batch[0])["predictions"][0]):
        assert answer["probabilities"] == pytest.approx(expected, abs=1e-5)
        assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert answer["count"] == max(range(6), key=expected.__getitem__)  # argmax card


# --- the figures an operator decides by ------------------------------------------------------


def _prediction(probabilities: list[float]) -> Prediction:
    return Prediction(0, probabilities, len(probabilities) - 1, "hand")


def test_decision_figures_on_a_case_worked_by_hand():
    # K = 3: probabilities of 0, 1, 2 and "3 or more".
    examples = [Example(name, count) for name, count in zip("ABCDE", [0, 1, 2, 3, 5], strict=True)]
    predictions = [
        _prediction([0.70, 0.20, 0.05, 0.05]),  # A, 0: right 0.70; +1 -> 0.20 (no -1)
        _prediction([0.10, 0.60, 0.20, 0.10]),  # B, 1: right 0.60; 0 -> 0.10, 2 -> 0.20
        _prediction([0.05, 0.35, 0.30, 0.30]),  # C, 2: right 0.30; 1 -> 0.35, 3 -> 0.30
        _prediction([0.00, 0.10, 0.30, 0.60]),  # D, 3: right 0.60; 2 -> 0.30 (4 is "3+" too)
        _prediction([0.00, 0.00, 0.50, 0.50]),  # E, 5: right 0.50 ("3+"); 4 and 6 are "3+"
    ]
    scored = score_expectations(examples, predictions)
    right = [s.p_expected for s in scored if s.expectation_right]
    wrong = [s.p_expected for s in scored if not s.expectation_right]
    assert sorted(right) == [0.30, 0.50, 0.60, 0.60, 0.70]
    assert sorted(wrong) == [0.10, 0.20, 0.20, 0.30, 0.30, 0.35]

    figures = decision_figures(right, wrong)

    assert (figures["right_quantities"], figures["one_item_discrepancies"]) == (5, 6)
    # AUROC over 6 x 5 pairs, a point where the discrepancy's p is lower, half a tie:
    # 0.10, 0.20, 0.20 below all 5 (15); 0.35 below 4 (4); each 0.30 below 4, ties 1 (9).
    assert figures["auroc"] == pytest.approx(28 / 30, abs=1e-4)
    # Auto-clear: 5% of 6 discrepancies is none, so MATCH must start above the highest,
    # 0.35; halfway to the next p, 0.50: 0.425. Right ones above: 0.50, 0.60, 0.60, 0.70.
    cleared = figures["auto_clear"]
    assert cleared["match_threshold"] == pytest.approx(0.425)
    assert (cleared["value"], cleared["discrepancies_matched"]) == (0.8, 0.0)
    # Catch-at-1%: 1% of 5 right ones is none, so MISMATCH must stop below the lowest, 0.30;
    # halfway to the next p below, 0.20: 0.25. Discrepancies below: 0.10, 0.20, 0.20 (3/6).
    caught = figures["catch_at_1pct"]
    assert caught["mismatch_threshold"] == pytest.approx(0.25)
    assert (caught["value"], caught["right_flagged"]) == (0.5, 0.0)
    recommended = figures["recommended_thresholds"]
    assert (recommended["match"], recommended["mismatch"]) == pytest.approx((0.425, 0.25))
    assert recommended["note"] is None
    # Between them UNCERTAIN: right 0.30; discrepancies 0.30, 0.30, 0.35.
    assert recommended["right"] == {"MATCH": 0.8, "MISMATCH": 0.0, "UNCERTAIN": 0.2}
    assert recommended["discrepancies"] == {"MATCH": 0.0, "MISMATCH": 0.5, "UNCERTAIN": 0.5}


def test_paired_decision_differences_resample_photos_for_both_models():
    # Three photos, each its right quantity and one discrepancy. Ours separates them all
    # (AUROC 1); theirs ranks every discrepancy above every right quantity (AUROC 0).
    ours = [[(0.9, True), (0.1, False)], [(0.8, True), (0.2, False)], [(0.7, True), (0.3, False)]]
    theirs = [[(0.1, True), (0.9, False)], [(0.2, True), (0.8, False)], [(0.3, True), (0.7, False)]]
    differences = paired_decision_differences(ours, theirs, resamples=200)

    assert differences["auroc"] == {"value": 1.0, "interval": (1.0, 1.0)}
    # Ours clears every right quantity and catches every discrepancy; theirs none.
    assert differences["auto_clear"]["value"] == differences["catch_at_1pct"]["value"] == 1.0
    # The same model against itself: zero, and a zero-width interval, whatever the draw.
    same = paired_decision_differences(ours, ours, resamples=200)
    assert {d["interval"] for d in same.values()} == {(0.0, 0.0)}
    with pytest.raises(ValueError, match="not the same photos"):
        paired_decision_differences(ours, theirs[:2])


def test_where_the_targets_overlap_one_cut_is_recommended_and_explained():
    right, wrong = [0.6, 0.8, 0.9], [0.1, 0.2, 0.3]
    # Match: above 0.3, halfway to 0.6 = 0.45. Mismatch: below 0.6, halfway to 0.3 = 0.45.
    figures = decision_figures(right, wrong)

    assert figures["auroc"] == 1.0
    assert figures["auto_clear"]["match_threshold"] == pytest.approx(0.45)
    assert figures["catch_at_1pct"]["mismatch_threshold"] == pytest.approx(0.45)
    recommended = figures["recommended_thresholds"]
    # The mismatch threshold falls back to the highest p below the match threshold: 0.3.
    assert (recommended["match"], recommended["mismatch"]) == pytest.approx((0.45, 0.3))
    assert "no UNCERTAIN band" in recommended["note"]
    assert recommended["right"]["MATCH"] == recommended["discrepancies"]["MISMATCH"] == 1.0


def test_evaluate_reports_the_ece_and_decision_figures_of_its_rows(model_artifact, tmp_path):
    model, card = read_artifact(model_artifact)
    warm = write_artifact(tmp_path / "warm.tar.gz", model, replace(card, temperature=2.0))

    report, rows = evaluate_folder(warm, SAMPLES, subset="all")

    probabilities = torch.tensor([row["probabilities"] for row in rows])
    labels = torch.tensor([min(row["true_count"], 5) for row in rows])
    assert report["calibration"]["temperature"] == 2.0
    assert report["calibration"]["ece"] == pytest.approx(
        expected_calibration_error(probabilities, labels), abs=1e-4
    )
    predictions = [Prediction(r["count"], r["probabilities"], 5, r["model_version"]) for r in rows]
    scored = score_expectations(
        [Example(r["image_id"], r["true_count"]) for r in rows], predictions
    )
    assert report["decision_figures"] == decision_figures(
        [s.p_expected for s in scored if s.expectation_right],
        [s.p_expected for s in scored if not s.expectation_right],
    )
    # K = 5: photos of 1-4 items have two neighbours; the empty bin one; 5 items one (6 is
    # "5 or more" as 5 is); 12 items none (11 and 13 are "5 or more" too): 10.
    assert report["decision_figures"]["one_item_discrepancies"] == 10
    printed = summary(report)
    assert "calibration: temperature 2.000, ECE" in printed
    assert "AUROC of 1 - p(expected)" in printed and "auto-clear" in printed
    # Served at T = 2: each row is the softmax of the logits over 2.
    [logits] = Predictor(model, card).logits([Predictor(model, card).decode(sample_photo())])
    [row] = [r for r in rows if r["image_id"] == "00579"]
    assert row["probabilities"] == pytest.approx((logits / 2).softmax(0).tolist(), abs=1e-5)


# --- bincheck calibrate and the fit at the end of training -----------------------------------


@pytest.fixture(scope="module")
def photos(split_photos) -> Path:
    return split_photos


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    train(get_args_parser().parse_args(tiny_run(photos, out)))
    return out


def _val_scores(artifact: Path, photos: Path) -> Scores:
    model, card = read_artifact(artifact)
    examples = split(read_labels(photos))["val"]
    return served_scores(Predictor(model, replace(card, temperature=1.0)), photos, examples)


def test_training_fits_the_temperature_on_the_validation_photos_and_records_ece(trained, photos):
    card = read_artifact(trained / "model.tar.gz")[1]
    recorded = json.loads((trained / "metrics.json").read_text())["calibration"]

    assert card.metrics["calibration"] == recorded
    assert card.temperature == recorded["temperature"] and recorded["fitted"]
    # The shipped weights' logits on the 7 validation photos, as served, give the same fit.
    assert card.temperature == pytest.approx(
        fit_temperature(_val_scores(trained / "model.tar.gz", photos)), rel=1e-3
    )
    assert recorded["val"]["photos"] == recorded["test"]["photos"] == 7
    assert recorded["val"]["nll_after"] <= recorded["val"]["nll_before"]
    assert {"ece_before", "ece_after"} <= set(recorded["test"])


class _Photos(torch.utils.data.TensorDataset):
    """Photos and counts as training's evaluation reads them (``dataset.counts``)."""

    def __init__(self, images: torch.Tensor, counts: torch.Tensor) -> None:
        super().__init__(images, counts)
        self.counts = counts


def test_training_evaluates_at_the_cards_temperature_as_the_model_serves():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 6))
    images, counts = torch.rand(8, 3, 4, 4), torch.tensor([0, 1, 2, 3, 4, 5, 1, 2])
    loader = torch.utils.data.DataLoader(_Photos(images, counts), batch_size=3)
    card = ModelCard("t", "b", max_count=6, input_size=(4, 4), decoding="median", temperature=3)

    result = evaluate(net, loader, torch.nn.CrossEntropyLoss(), torch.device("cpu"), card)

    served = (net(images) / 3.0).softmax(1).detach()
    torch.testing.assert_close(result["probabilities"], served)
    assert result["predicted"].tolist() == decode_counts(served, card.decoding).tolist()


def test_a_refit_keeps_temperature_one_and_says_why(photos, tmp_path, capsys):
    train(get_args_parser().parse_args(tiny_run(photos, tmp_path, "--refit")))

    card = read_artifact(tmp_path / "model.tar.gz")[1]
    calibration = card.metrics["calibration"]
    assert card.temperature == 1.0 and not calibration["fitted"]
    assert calibration["not_fitted"] == "a refit trains on its validation photos"
    assert calibration["test"]["ece_before"] == calibration["test"]["ece_after"]
    assert "calibration: temperature=1.0000 (not fitted: a refit" in capsys.readouterr().out


def test_calibrate_fits_an_artifact_on_its_own_validation_photos(trained, photos, tmp_path, capsys):
    uncalibrated = tmp_path / "uncalibrated.tar.gz"
    model, card = read_artifact(trained / "model.tar.gz")
    write_artifact(uncalibrated, model, replace(card, temperature=1.0))
    out = tmp_path / "calibrated" / "model.tar.gz"

    code = bincheck(
        ["calibrate", "--model", str(uncalibrated), "--data", str(photos), "--out", str(out)]
    )

    assert code == 0
    model_after, calibrated = read_artifact(out)
    # The same photos and weights as at the end of training: the same temperature.
    assert calibrated.temperature == pytest.approx(card.temperature, rel=1e-3)
    assert calibrated.version == "tiny-calibrated"
    assert calibrated.metrics["calibration"]["val"]["photos"] == 7
    assert calibrated.metrics["test"] == card.metrics["test"]  # the rest of the card kept
    weights, weights_after = model.state_dict(), model_after.state_dict()
    assert all(torch.equal(weights[name], weights_after[name]) for name in weights)
    printed = capsys.readouterr().out
    assert f"tiny-calibrated: temperature {calibrated.temperature:.4f} (was 1)" in printed
    assert "validation ECE" in printed

    again = tmp_path / "again.tar.gz"
    assert (
        bincheck(
            [
                "calibrate",
                "--model",
                str(out),
                "--data",
                str(photos),
                "--out",
                str(again),
                "--version",
                "v2",
            ]
        )
        == 0
    )
    assert read_artifact(again)[1].version == "v2"
    assert read_artifact(again)[1].temperature == pytest.approx(calibrated.temperature, rel=1e-6)


def test_calibrate_refuses_what_it_cannot_calibrate(
    trained, photos, model_artifact, tmp_path, capsys
):
    artifact = trained / "model.tar.gz"
    model, card = read_artifact(artifact)
    refit = write_artifact(
        tmp_path / "refit.tar.gz",
        model,
        replace(card, training={**card.training, "hyperparameters": {"refit": "True"}}),
    )
    fewer = tmp_path / "fewer"
    shutil.copytree(photos, fewer)
    labels = (fewer / "labels.csv").read_text().splitlines()
    kept = [line for line in labels if not line.startswith("200047,")]  # a validation photo
    (fewer / "labels.csv").write_text("\n".join(kept) + "\n")
    out = str(tmp_path / "out.tar.gz")
    cases = {
        "names no validation split": [str(model_artifact), str(photos), out],
        "is a refit": [str(refit), str(photos), out],
        "no data folder at": [str(artifact), str(tmp_path / "missing"), out],
        "has 6 validation photos": [str(artifact), str(fewer), out],
        "write the calibrated one elsewhere": [str(artifact), str(photos), str(artifact)],
        "no model at": [str(tmp_path / "none.tar.gz"), str(photos), out],
    }
    for message, (model_path, data, target) in cases.items():
        code = bincheck(["calibrate", "--model", model_path, "--data", data, "--out", target])
        assert code == 2, message
        assert message in capsys.readouterr().err
    assert not Path(out).exists()
