"""What a 224x224 thumbnail costs a model against the full-size photo, on the same photos.

``../shared/data/abid-224`` holds photos a public copy resized to 224x224 (Pillow's
``Image.resize((224, 224))`` at its default filter, saved as a JPEG at Pillow's default
quality): none of them exists at full size here, so a model trained on both cannot be
compared on the same photos at both resolutions. This script does the next best thing: it
makes that thumbnail of each full-size photo of a held-out subset, as the copy did, and
scores a model on the photo and on its thumbnail, paired (full size minus thumbnail, with
95% bootstrap intervals over photos). It measures what the lower resolution costs at the
model's input; what it costs as training data would take a training run per arm.

    .venv/bin/python benchmarks/thumbnail_cost.py --model model/default/model.tar.gz \
        --data ../shared/data/abid --subset val test
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from model.artifact import read_artifact
from model.predictor import Predictor
from training.data import read_labels, split
from training.metrics import count_metrics
from training.paired import ServedPhotos, compare, describe_differences, predict_photos

THUMBNAIL = (224, 224)


def thumbnail(photo: bytes) -> bytes:
    """The photo as the public copy made it: squashed to 224x224, JPEG at default quality."""
    with Image.open(io.BytesIO(photo)) as image:
        small = image.convert("RGB").resize(THUMBNAIL)
    out = io.BytesIO()
    small.save(out, format="JPEG")
    return out.getvalue()


def main(args: argparse.Namespace) -> dict:
    model, card = read_artifact(args.model)
    examples = read_labels(args.data)
    parts = split(examples, seed=int(card.training.get("split_seed", 0)))
    examples = [e for subset in args.subset for e in parts[subset]]
    predictor = Predictor(model, card)
    full = predict_photos(predictor, args.data, examples)
    decode = predictor.decoder
    thumbnails = ServedPhotos(args.data, examples, lambda photo: decode(thumbnail(photo)))
    small = [
        p for batch in DataLoader(thumbnails, batch_size=32) for p in predictor.predict(list(batch))
    ]
    counts = torch.tensor([e.count for e in examples])
    at_full = torch.tensor([p.count for p in full])
    at_224 = torch.tensor([p.count for p in small])
    compared = compare(at_full, at_224, counts, card, card)
    report = {
        "model_version": card.version,
        "photos": len(examples),
        "subsets": args.subset,
        "full_size": count_metrics(at_full, counts, card.max_count),
        "thumbnail_224": compared["metrics"],
        "full_minus_thumbnail": compared["difference"],
    }
    print(f"{card.version}: {len(examples)} photos ({' + '.join(args.subset)})")
    for name in ("full_size", "thumbnail_224"):
        figures = "  ".join(f"{k} {v:.3f}" for k, v in report[name].items() if "_all" not in k)
        print(f"  {name:<14} {figures}")
    print(f"  full size minus thumbnail: {describe_differences(compared)}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument("--data", type=Path, required=True, help="a full-size data folder")
    parser.add_argument(
        "--subset", nargs="+", choices=("train", "val", "test"), default=["val", "test"]
    )
    parser.add_argument("--out", type=Path, help="the figures as JSON")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
