"""Cross-validation: a recipe's held-out figures on every photo of a small data set.

One split of 2,037 photos tests a model on 281 photos (counts 0-5): its accuracy is known
to +-0.06, too coarse to say whether a recipe reaches 0.40, or 1.5x another. Here the
photos are cut into ``--folds`` count-stratified folds; each fold is the test set of one
model, trained with the recipe on the other folds (about 15% of all photos of them for
validation, as in the default split). Every photo is then predicted once, by a model that
never saw it, and the pooled figures come with 95% bootstrap intervals over the photos.
With ``--baseline`` (by default the published recipe, as in docs/model.md) each fold also
trains the baseline, and the recipe is compared with it on the same photos: differences
and the accuracy ratio with paired intervals.

The intervals resample photos, not training runs: they leave out how much another seed
would move each fold's model. ``--seeds 0 1`` trains the recipe once per seed on each fold
and reports each seed's figures, so the seed-to-seed spread shows, and the seed average
(each photo's count decoded from the mean of the seeds' probabilities, as one served
ensemble would) against seed 0 on the same photos.

``--fractions 0.25 0.5`` also trains the recipe on nested, count-stratified fractions of
each fold's training photos (validation and test photos unchanged): a learning curve
scored on every photo instead of one test split. Each fraction is compared with all the
photos on the same photos, and accuracy, off-by-one and RMSE get a slope per doubling of
the training photos (least squares over the sizes, with a 95% interval from resampling the
photos alike for every size) and the number of training photos at which that line reaches
the goals.

Every run is a plain ``python -m training.train`` on a folder of links whose
``labels.csv`` names each photo's split, written under ``--out``; a finished run is not
trained again, so the benchmark can be stopped and resumed, or run fold by fold
(``--only``).

    .venv/bin/python benchmarks/cross_validation.py --data ../shared/data/abid \\
        --weights ../shared/weights/tf_efficientnet_lite0.imagenet.pth
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

from model.artifact import read_artifact
from model.card import ModelCard
from model.counts import decode_counts
from model.predictor import Predictor
from training import recipes
from training.data import (
    Example,
    count_groups,
    nested_fraction,
    read_labels,
    split,
    write_split_folder,
)
from training.metrics import MODERATE_MAX, bootstrap_intervals, count_metrics, error_figures
from training.paired import LABELS, compare, describe_differences, predict_photos

GOALS = {"accuracy": 0.40, "off_by_one": 0.85, "rmse": 1.0}  # docs/model.md, "The default model"


def make_folds(
    examples: list[Example], folds: int, *, seed: int = 0, strata: int = 6
) -> list[list[Example]]:
    """``folds`` disjoint parts covering every photo, each with its share of every count
    (photos of one count, in a seeded order, dealt out in turn)."""
    groups = count_groups(examples, salt=f"fold{seed}", strata=strata)
    parts: list[list[Example]] = [[] for _ in range(folds)]
    dealt = 0
    for count in sorted(groups):
        for example in groups[count]:  # carry on from the last count: sizes differ by one
            parts[dealt % folds].append(example)
            dealt += 1
    return parts


def fold_parts(
    folds: list[list[Example]], held_out: int, *, val_share: float = 0.15, seed: int = 0
) -> dict[str, list[Example]]:
    """Fold ``held_out`` as the test photos; the others split by count into training and
    validation photos, validation being ``val_share`` of all photos."""
    rest = [e for i, fold in enumerate(folds) if i != held_out for e in fold]
    total = sum(map(len, folds))
    val = val_share * total / len(rest)
    parts = split(rest, (1 - val, val, 0.0), seed=seed)
    parts["train"] += parts.pop("test")  # a photo rounding left over trains
    return {**parts, "test": folds[held_out]}


def accuracy_ratio(
    predicted: torch.Tensor,
    baseline: torch.Tensor,
    counts: torch.Tensor,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Accuracy over the baseline's on counts 0-5, with a paired 95% bootstrap interval."""
    moderate = counts <= MODERATE_MAX
    right = (predicted[moderate] == counts[moderate]).float()
    base = (baseline[moderate] == counts[moderate]).float()
    rows = torch.randint(
        len(right), (resamples, len(right)), generator=torch.Generator().manual_seed(seed)
    )
    ratios = right[rows].mean(-1) / base[rows].mean(-1)
    low, high = torch.quantile(ratios, torch.tensor([0.025, 0.975])).tolist()
    return round(float(right.mean() / base.mean()), 3), (round(low, 3), round(high, 3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", required=True, help="pretrained backbone weights")
    parser.add_argument("--out", type=Path, default=Path("runs/cross-validation"))
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--recipe", default=recipes.DEFAULT, help="train.py options")
    parser.add_argument(
        "--baseline",
        default=recipes.BASELINE,
        help="train.py options to compare with ('' for none)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="train the recipe once per seed"
    )
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[],
        help="also train the recipe (first seed) on these fractions of each fold's training "
        "photos: a learning curve",
    )
    parser.add_argument("--only", type=int, nargs="+", help="train these folds, report nothing")
    parser.add_argument("--seed", type=int, default=0, help="how photos are dealt into folds")
    args = parser.parse_args()

    examples = read_labels(args.data)
    folds = make_folds(examples, args.folds, seed=args.seed)
    first = run_name(args.seeds[0])
    chosen = {  # name: (train.py options, fraction of each fold's training photos)
        **{run_name(seed): (seeded(args.recipe, seed), 1.0) for seed in args.seeds},
        **{fraction_name(f): (seeded(args.recipe, args.seeds[0]), f) for f in args.fractions},
        **({"baseline": (args.baseline, 1.0)} if args.baseline else {}),
    }
    artifacts: dict[str, list[Path]] = {name: [] for name in chosen}
    training_photos: dict[str, list[int]] = {name: [] for name in chosen}
    for name, (recipe, fraction) in chosen.items():  # the recipe's folds first: the longest
        for fold in args.only or range(args.folds):
            run = args.out / name / f"fold-{fold}"
            parts = fold_parts(folds, fold, seed=args.seed)
            if fraction < 1:
                parts["train"] = nested_fraction(parts["train"], fraction)
            write_split_folder(args.data, run / "data", parts)
            training_photos[name].append(len(parts["train"]))
            artifacts[name].append(
                recipes.train(run / "data", args.weights, run, f"cv-{name}-{fold}", recipe)
            )
    if args.only:
        return 0

    photos = [e for fold in folds for e in fold]  # the order of the predictions
    counts = torch.tensor([e.count for e in photos])
    predicted: dict[str, torch.Tensor] = {}
    probabilities: dict[str, torch.Tensor] = {}
    cards: dict[str, ModelCard] = {}
    report: dict[str, Any] = {}
    for name, paths in artifacts.items():
        predicted[name], probabilities[name], cards[name] = held_out_predictions(
            args.data, folds, paths
        )
        report[name] = figures(predicted[name], counts, folds, cards[name].max_count)
        print(f"{name}: {len(photos)} photos, each held out: {describe(report[name])}")
    if len(args.seeds) > 1:
        seeds = [run_name(seed) for seed in args.seeds]
        card = cards[first]
        average = seed_average([probabilities[name] for name in seeds], card.decoding)
        report["seed_average"] = figures(average, counts, folds, card.max_count)
        versus = compare(average, predicted[first], counts, card, card)
        report["seed_average_minus_first"] = versus["difference"]
        print(f"average of {len(seeds)} seeds: {describe(report['seed_average'])}")
        print(f"average minus seed {args.seeds[0]}, same photos: {describe_differences(versus)}")
    if args.fractions:
        curve = [fraction_name(f) for f in sorted(args.fractions)] + [first]
        for name in curve[:-1]:
            versus = compare(predicted[name], predicted[first], counts, cards[name], cards[first])
            report[f"{name}_minus_all"] = versus["difference"]
            print(f"{name} minus all training photos, same photos: {describe_differences(versus)}")
        photos_per_fold = [sum(training_photos[name]) / args.folds for name in curve]
        report["learning_curve"] = {
            "training_photos_per_fold": photos_per_fold,
            **learning_slope(
                [predicted[name] for name in curve], counts, photos_per_fold, cards[first].max_count
            ),
        }
        print(describe_slope(report["learning_curve"]))
    if "baseline" in predicted:
        versus = compare(
            predicted["recipe"], predicted["baseline"], counts, cards["recipe"], cards["baseline"]
        )
        ratio, (low, high) = accuracy_ratio(predicted["recipe"], predicted["baseline"], counts)
        report["recipe_minus_baseline"] = versus["difference"]
        report["accuracy_ratio"] = {"value": ratio, "interval": [low, high]}
        print(f"recipe minus baseline, same photos: {describe_differences(versus)}")
        print(f"recipe accuracy / baseline accuracy: {ratio:.2f}x ({low:.2f}-{high:.2f})")
    (args.out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def run_name(seed: int) -> str:
    """Where the recipe's runs of ``seed`` go: seed 0's are the plain ``recipe`` runs."""
    return "recipe" if seed == 0 else f"recipe-seed{seed}"


def fraction_name(fraction: float) -> str:
    """Where the recipe's runs on ``fraction`` of each fold's training photos go."""
    return f"recipe-fraction-{fraction:g}"


def seeded(recipe: str, seed: int) -> str:
    return recipe if seed == 0 else f"{recipe} --seed {seed}"


def seed_average(probabilities: list[torch.Tensor], decoding: str) -> torch.Tensor:
    """Each photo's count from the mean of several models' distributions over counts."""
    return decode_counts(torch.stack(probabilities).mean(0), decoding)


def held_out_predictions(
    data: Path, folds: list[list[Example]], artifacts: list[Path]
) -> tuple[torch.Tensor, torch.Tensor, ModelCard]:
    """Every photo's count and distribution over counts, from the model of the fold that
    held it out (folds in order)."""
    predictions = []
    for fold, path in zip(folds, artifacts, strict=True):
        model, card = read_artifact(path)
        predictions += predict_photos(Predictor(model, card), data, fold)
    counts = torch.tensor([p.count for p in predictions])
    return counts, torch.tensor([p.probabilities for p in predictions]), card


def figures(
    predicted: torch.Tensor, counts: torch.Tensor, folds: list[list[Example]], max_count: int
) -> dict[str, Any]:
    """Pooled figures with 95% intervals, and each fold's own."""
    sizes = [len(fold) for fold in folds]
    return {
        "metrics": count_metrics(predicted, counts, max_count),
        "intervals": bootstrap_intervals(predicted, counts, max_count),
        "folds": [
            count_metrics(mine, truth, max_count)
            for mine, truth in zip(predicted.split(sizes), counts.split(sizes), strict=True)
        ],
    }


BETTER = {"accuracy": 1, "off_by_one": 1, "rmse": -1}  # the sign of an improvement


def learning_slope(
    predicted: list[torch.Tensor],
    counts: torch.Tensor,
    photos: list[float],
    max_count: int,
    *,
    goals: dict[str, float] = GOALS,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Each ``goals`` figure's change per doubling of the training photos, from models
    trained on ``photos`` photos that predicted the same photos: the least-squares line
    through the figures against log2(photos), its 95% interval from resampling the photos
    (the same rows for every size), and the photos at which that line reaches the goal
    (fewer than the largest size: it already has; None, "never": the line does not improve)."""
    moderate = counts <= MODERATE_MAX
    truth = counts[moderate].clamp(max=max_count)
    errors = torch.stack([(p[moderate] - truth).float() for p in predicted])  # (sizes, photos)
    rows = torch.randint(
        errors.shape[1],
        (resamples, errors.shape[1]),
        generator=torch.Generator().manual_seed(seed),
    )
    x = torch.tensor(photos, dtype=torch.float64).log2()
    centred = x - x.mean()
    observed, resampled = error_figures(errors), error_figures(errors[:, rows])
    interval = torch.tensor([0.025, 0.975], dtype=torch.float64)
    result: dict[str, Any] = {}
    for name, goal in goals.items():
        values = torch.cat([observed[name][:, None], resampled[name]], 1).double()
        slopes = centred @ values / (centred @ centred)  # the observed one first
        gap = goal - values.mean(0)
        reach = torch.where(
            slopes * BETTER[name] > 0, (x.mean() + gap / slopes).exp2(), float("inf")
        )
        result[name] = {
            "figures": [round(v, 4) for v in values[:, 0].tolist()],
            "per_doubling": round(slopes[0].item(), 4),
            "interval": [round(v, 4) for v in torch.quantile(slopes[1:], interval).tolist()],
            "goal": goal,
            "photos_at_goal": _whole(reach[0].item()),
            "photos_at_goal_interval": [
                _whole(v)
                for v in torch.quantile(reach[1:], interval, interpolation="nearest").tolist()
            ],
        }
    return result


def describe_slope(curve: dict[str, Any]) -> str:
    """``training photos per fold 305, 611, 1222: accuracy 0.31 0.33 0.35, +0.021 per
    doubling (...), 0.40 at about 4,000 photos (...); RMSE ...``"""
    parts = []
    for name in GOALS:
        c = curve[name]
        low, high = c["interval"]
        reach_low, reach_high = (_photos(v) for v in c["photos_at_goal_interval"])
        reach = (
            f"never {c['goal']:.2f}"
            if c["photos_at_goal"] is None
            else f"{c['goal']:.2f} at about {_photos(c['photos_at_goal'])} photos "
            f"({reach_low} to {reach_high})"
        )
        parts.append(
            f"{LABELS[name]} {' '.join(f'{v:.3f}' for v in c['figures'])}, "
            f"{c['per_doubling']:+.3f} per doubling ({low:+.3f} to {high:+.3f}), {reach}"
        )
    sizes = ", ".join(f"{round(n):,}" for n in curve["training_photos_per_fold"])
    return f"learning curve, training photos per fold {sizes}: " + "; ".join(parts)


def _whole(value: float) -> int | None:
    return None if math.isinf(value) else round(value)


def _photos(value: int | None) -> str:
    return "never" if value is None else f"{value:,}"


def describe(scored: dict[str, Any]) -> str:
    """``accuracy 0.361 (0.339-0.383)  ...; accuracy by fold 0.35 ...`` (counts 0-5)."""
    metrics, intervals = scored["metrics"], scored["intervals"]
    pooled = "  ".join(
        f"{label} {metrics[name]:.3f} ({intervals[name][0]:.3f}-{intervals[name][1]:.3f})"
        for name, label in LABELS.items()
    )
    by_fold = " ".join(f"{fold['accuracy']:.3f}" for fold in scored["folds"])
    return f"{int(metrics['n'])} of counts 0-5: {pooled}; accuracy by fold {by_fold}"


if __name__ == "__main__":
    raise SystemExit(main())
