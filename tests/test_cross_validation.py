"""benchmarks/cross_validation.py: how photos are dealt into folds, and the ratio's interval."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from training.data import Example, nested_fraction, read_labels, split, write_split_folder

from .conftest import SAMPLES, load_benchmark

cv = load_benchmark("cross_validation")

PHOTOS = [Example(f"{i:05d}", count) for i, count in enumerate([1] * 30 + [3] * 61 + [9] * 9)]


def test_every_photo_is_held_out_by_exactly_one_fold_and_each_fold_has_every_count():
    folds = cv.make_folds(PHOTOS, 4)

    held_out = [e.image_id for fold in folds for e in fold]
    assert sorted(held_out) == sorted(e.image_id for e in PHOTOS)
    assert [len(fold) for fold in folds] == [25, 25, 25, 25]
    for fold in folds:
        shares = Counter(min(e.count, 6) for e in fold)
        assert shares[1] in (7, 8) and shares[3] in (15, 16) and shares[6] in (2, 3)
    assert cv.make_folds(PHOTOS, 4) == folds  # seeded
    assert cv.make_folds(PHOTOS, 4, seed=1) != folds


def test_a_fold_trains_on_the_others_and_validates_on_a_share_of_all_photos():
    folds = cv.make_folds(PHOTOS, 4)

    for held_out in range(4):
        parts = cv.fold_parts(folds, held_out)
        assert parts["test"] == folds[held_out]
        assert len(parts["val"]) == pytest.approx(15, abs=2)  # 15% of all 100
        used = [e.image_id for part in parts.values() for e in part]
        assert sorted(used) == sorted(e.image_id for e in PHOTOS)  # each once


def test_a_fold_folder_trains_on_exactly_its_parts(tmp_path):
    photos = read_labels(SAMPLES)
    parts = cv.fold_parts(cv.make_folds(photos, 2), 0, val_share=0.3)

    write_split_folder(SAMPLES, tmp_path, parts)

    assert split(read_labels(tmp_path)) == {
        name: [Example(e.image_id, e.count, name) for e in part] for name, part in parts.items()
    }


def test_the_accuracy_ratio_and_its_paired_interval():
    truth = torch.arange(600) % 6
    baseline = torch.where(torch.arange(600) % 4 == 0, truth, (truth + 1) % 6)  # 0.25
    better = torch.where(torch.arange(600) % 2 == 0, truth, (truth + 1) % 6)  # 0.50

    ratio, (low, high) = cv.accuracy_ratio(better, baseline, truth)

    assert ratio == 2.0
    assert 1.7 < low < 2.0 < high < 2.3  # every baseline hit is a hit of ours: narrow


def test_the_seed_average_decodes_the_mean_distribution_and_seed_0_keeps_its_runs():
    first = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])  # median 0, 2
    second = torch.tensor([[0.0, 0.2, 0.8], [0.0, 0.5, 0.5]])  # median 2, 1

    # mean [.3 .25 .45] and [.05 .35 .6]: medians 1 and 2, neither the first row's 0 nor 2
    assert cv.seed_average([first, second], "median").tolist() == [1, 2]
    assert cv.seed_average([first, second], "argmax").tolist() == [2, 2]
    assert (cv.run_name(0), cv.seeded("--epochs 15", 0)) == ("recipe", "--epochs 15")
    assert (cv.run_name(2), cv.seeded("--epochs 15", 2)) == ("recipe-seed2", "--epochs 15 --seed 2")


def test_a_fractions_folds_train_on_nested_shares_of_every_count_and_test_on_the_same_photos():
    folds = cv.make_folds(PHOTOS, 4)
    parts = cv.fold_parts(folds, 0)

    quarter, half = (nested_fraction(parts["train"], f) for f in (0.25, 0.5))

    assert {e.image_id for e in quarter} < {e.image_id for e in half}
    full, small = Counter(e.count for e in parts["train"]), Counter(e.count for e in half)
    assert all(abs(small[c] - full[c] / 2) <= 0.5 for c in full)
    assert cv.fraction_name(0.25) == "recipe-fraction-0.25"


def _predictions(accuracies: list[float], n: int = 900) -> list[torch.Tensor]:
    """Counts 0-5 predicted right on the first ``accuracy`` share of ``n`` photos, else one
    too many: accuracy as given, and RMSE the square root of the share wrong."""
    truth = torch.arange(n) % 6
    return [torch.where(torch.arange(n) < a * n, truth, truth + 1) for a in accuracies]


def test_the_learning_slope_is_per_doubling_and_says_where_the_line_reaches_the_goal():
    truth = torch.arange(900) % 6

    curve = cv.learning_slope(_predictions([0.25, 0.30, 0.35]), truth, [100, 200, 400], 6)

    accuracy = curve["accuracy"]
    assert accuracy["figures"] == [0.25, 0.3, 0.35]
    assert accuracy["per_doubling"] == pytest.approx(0.05)
    low, high = accuracy["interval"]
    assert 0 < low < 0.05 < high < 0.1
    assert accuracy["photos_at_goal"] == 800  # 0.40, one doubling on
    reach_low, reach_high = accuracy["photos_at_goal_interval"]
    assert 400 < reach_low < 800 < reach_high
    assert curve["off_by_one"]["figures"] == [1.0, 1.0, 1.0]  # one too many is off by one
    rmse = curve["rmse"]  # sqrt(0.75), sqrt(0.70), sqrt(0.65): falling, below 1.0 already
    assert rmse["per_doubling"] < 0 and rmse["photos_at_goal"] is not None
    assert rmse["photos_at_goal"] < 100  # the line crossed 1.0 before the smallest size


def test_a_flat_learning_curve_never_reaches_the_goal():
    truth = torch.arange(900) % 6

    curve = cv.learning_slope(_predictions([0.30, 0.30, 0.30]), truth, [100, 200, 400], 6)

    assert curve["accuracy"]["per_doubling"] == 0
    assert curve["accuracy"]["photos_at_goal"] is None
    assert "+0.000 per doubling (+0.000 to +0.000), never 0.40;" in cv.describe_slope(
        {"training_photos_per_fold": [100, 200, 400], **curve}
    )
