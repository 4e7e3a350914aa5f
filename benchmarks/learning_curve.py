"""Learning curve: how held-out accuracy grows with the number of training photos.

The question it answers: is the counting model short of data (more photos would raise its
figures) or short of something else? It trains one recipe (by default the default model's)
on nested, count-stratified fractions of one data folder's training photos, keeping the
validation and test photos fixed, and scores every model on the same test photos. Each
row's difference from the largest fraction comes with a paired 95% bootstrap interval.

The fractions are folders of links (``labels.csv`` names each photo's split), written under
``--out`` beside each run's output, so every run is a plain ``python -m training.train``
that can be repeated by hand. A fraction whose run finished is not trained again.

    .venv/bin/python benchmarks/learning_curve.py --data ../shared/data/abid \\
        --weights ../shared/weights/tf_efficientnet_lite0.imagenet.pth --fractions 0.25 0.5 1 \\
        --full model/default/model.tar.gz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from model.artifact import read_artifact
from model.predictor import Predictor
from training import recipes
from training.data import nested_fraction, read_labels, split, write_split_folder
from training.metrics import count_metrics
from training.paired import compare, predict_photos


def write_fraction(data: Path, folder: Path, fraction: float, split_seed: int) -> int:
    """A data folder of links: ``fraction`` of the training photos, all val and test ones."""
    parts = split(read_labels(data), seed=split_seed)
    parts["train"] = nested_fraction(parts["train"], fraction)
    write_split_folder(data, folder, parts)
    return len(parts["train"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", required=True, help="pretrained backbone weights")
    parser.add_argument("--out", type=Path, default=Path("runs/learning-curve"))
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--recipe", default=recipes.DEFAULT, help="train.py options")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument(
        "--full",
        type=Path,
        help="a model already trained with the recipe on all training photos of this split "
        "(model/default/model.tar.gz for the default recipe): the 1.0 row, not trained again",
    )
    args = parser.parse_args()

    rows = []
    for fraction in sorted(args.fractions):
        run = args.out / f"fraction-{fraction:g}"
        photos = write_fraction(args.data, run / "data", fraction, args.split_seed)
        if args.full and fraction == 1:
            artifact = args.full
        else:
            artifact = recipes.train(
                run / "data", args.weights, run, f"curve-{fraction:g}", args.recipe
            )
        rows.append((fraction, photos, artifact))

    # Each model predicts the test photos once; the rows compare against the largest.
    test = split(read_labels(args.data), seed=args.split_seed)["test"]
    counts = torch.tensor([e.count for e in test])
    scored = []
    for fraction, photos, artifact in rows:
        model, card = read_artifact(artifact)
        predicted = predict_photos(Predictor(model, card), args.data, test)
        scored.append((fraction, photos, card, torch.tensor([p.count for p in predicted])))
    _, largest_photos, largest_card, largest = scored[-1]
    print(f"\ntest photos, counts 0-5; minus the {largest_photos}-photo model, paired 95%")
    print("| training photos | accuracy | off-by-one | RMSE | accuracy difference (95%) |")
    print("| --- | --- | --- | --- | --- |")
    for fraction, photos, card, predicted in scored:
        m = count_metrics(predicted, counts, card.max_count)
        d = compare(predicted, largest, counts, card, largest_card)["difference"]["accuracy"]
        print(
            f"| {photos} ({fraction:g}) | {m['accuracy']:.3f} | {m['off_by_one']:.3f} | "
            f"{m['rmse']:.2f} | {d['value']:+.3f} ({d['interval'][0]:+.3f} to "
            f"{d['interval'][1]:+.3f}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
