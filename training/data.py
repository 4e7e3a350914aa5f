"""Data folders (``images/<id>.jpg`` + ``labels.csv``), splits, and a dataset of photos.

Extra training folders (``read_extra_folders``) add photos to the training set only: each
keeps its own ``PhotoDataset``, so ids may repeat across folders.

Photos are decoded once at the network's input size (uint8) and kept in memory when they
fit (``fits_in_memory``), so epochs cost only augmentation and the network; a larger data
set (ABID's 325,000 photos would take 75 GB at 240x320) is decoded as it is read.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset

from model.images import BadInput, decode

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Example:
    image_id: str
    count: int
    split: str | None = None  # from labels.csv's optional ``split`` column


def read_labels(folder: Path) -> list[Example]:
    """Labelled photos of a data folder that exist on disk, in ``labels.csv`` order."""
    examples = []
    with (folder / "labels.csv").open(newline="") as rows:
        for row in csv.DictReader(rows):
            if (folder / "images" / f"{row['image_id']}.jpg").is_file():
                examples.append(Example(row["image_id"], int(row["count"]), row.get("split")))
    if not examples:
        raise ValueError(f"{folder} has no labelled photos (images/<id>.jpg + labels.csv)")
    return examples


def read_extra_folders(folders: Sequence[Path], main: Sequence[Path]) -> dict[Path, list[Example]]:
    """Every labelled photo of each extra training folder, whatever split its ``labels.csv``
    names: all of them are trained on, none validated or tested on.

    Refused (``ValueError``, naming the folder): a folder that does not exist, has no
    ``labels.csv`` or no labelled photo, is given twice, or is one of the ``main`` folders
    (its validation and test photos would be trained on).
    """
    chosen: dict[Path, list[Example]] = {}
    main_folders = {folder.resolve() for folder in main}
    for folder in folders:
        if folder.resolve() in main_folders:
            raise ValueError(
                f"{folder} is the main data folder: its validation and test photos would be "
                "trained on"
            )
        if folder.resolve() in {f.resolve() for f in chosen}:
            raise ValueError(f"{folder} is given twice")
        if not folder.is_dir():
            raise ValueError(f"{folder} does not exist")
        if not (folder / "labels.csv").is_file():
            raise ValueError(
                f"{folder} has no labels.csv (a data folder: images/<id>.jpg + labels.csv)"
            )
        chosen[folder] = read_labels(folder)
    return chosen


def split(
    examples: Sequence[Example],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
    strata: int = 6,
) -> dict[str, list[Example]]:
    """Deterministic stratified split: the same ids always land in the same split.

    A folder whose ``labels.csv`` names each photo's split (``bincheck data abid`` writes
    one) keeps it. Otherwise photos are grouped by count (``strata`` or more in one
    group), ordered within a group by a hash of the seed and the id, and each group is
    cut by the fractions, so every count is represented in each split in proportion.
    """
    if examples and all(e.split in SPLITS for e in examples):
        return {name: [e for e in examples if e.split == name] for name in SPLITS}
    parts: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for group in count_groups(examples, salt=str(seed), strata=strata).values():
        n_train = round(len(group) * fractions[0])
        n_val = round(len(group) * fractions[1])
        parts["train"] += group[:n_train]
        parts["val"] += group[n_train : n_train + n_val]
        parts["test"] += group[n_train + n_val :]
    return parts


def count_groups(
    examples: Sequence[Example], *, salt: str, strata: int | None = None
) -> dict[int, list[Example]]:
    """Photos grouped by count (``strata`` or more in one group), in order of first
    appearance, each group in a seeded order: a hash of ``salt`` and the id, so the same
    ids always come out in the same order whatever else the folder holds."""
    groups: dict[int, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.count if strata is None else min(example.count, strata)].append(example)
    for group in groups.values():
        group.sort(key=lambda e: hashlib.sha256(f"{salt}:{e.image_id}".encode()).digest())
    return groups


def nested_fraction(examples: list[Example], fraction: float, seed: int = 0) -> list[Example]:
    """The first ``fraction`` of each count's photos in a seeded order: a smaller fraction's
    photos are always among a larger one's, and every count keeps its share (learning
    curves: ``benchmarks/learning_curve.py``, ``benchmarks/cross_validation.py``)."""
    chosen = []
    for group in count_groups(examples, salt=f"curve{seed}").values():
        chosen += group[: max(1, round(len(group) * fraction))]
    return chosen


def write_split_folder(source: Path, folder: Path, parts: dict[str, list[Example]]) -> None:
    """A data folder of links to ``source``'s photos whose ``labels.csv`` names each photo's
    split, so a plain ``training.train --data FOLDER`` trains on exactly these parts."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = ["image_id,count,split"]
    for name, examples in parts.items():
        for e in examples:
            link = images / f"{e.image_id}.jpg"
            if not link.exists():
                link.symlink_to((source / "images" / f"{e.image_id}.jpg").resolve())
            rows.append(f"{e.image_id},{e.count},{name}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


class PhotoDataset(Dataset):
    """(image uint8 (3, H, W), class) pairs; the class of ``count >= K`` is ``K``.

    With a teacher's probabilities attached (``attach_teacher``), the second item is
    ``(1 + K + 1,)`` floats: the class, then the teacher's distribution over the classes
    (``losses.DistillationLoss`` reads them)."""

    def __init__(
        self,
        folder: Path,
        examples: Sequence[Example],
        size: tuple[int, int],
        max_count: int,
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cache: bool = True,
        threads: int = 4,
    ) -> None:
        self.folder = folder
        self.examples = list(examples)
        self.size = size
        self.transform = transform
        self.targets = torch.tensor([min(e.count, max_count) for e in self.examples])
        self.counts = torch.tensor([e.count for e in self.examples])
        self.images: torch.Tensor | None = None
        self.teacher: torch.Tensor | None = None
        if cache:
            with ThreadPoolExecutor(threads) as pool:  # PIL releases the GIL while decoding
                self.images = torch.stack(list(pool.map(self._decode, range(len(self)))))

    def _decode(self, index: int) -> torch.Tensor:
        path = self.folder / "images" / f"{self.examples[index].image_id}.jpg"
        try:
            return decode(path.read_bytes(), self.size)
        except BadInput as error:
            raise ValueError(f"{path}: {error.message}") from error

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index] if self.images is not None else self._decode(index)
        if self.transform is not None:
            image = self.transform(image)
        if self.teacher is not None:
            return image, torch.cat([self.targets[index, None].float(), self.teacher[index]])
        return image, self.targets[index]


def fits_in_memory(photos: int, size: tuple[int, int], budget_gb: float) -> bool:
    """Whether ``photos`` decoded at ``size`` (uint8 RGB) take at most ``budget_gb``."""
    return photos * 3 * size[0] * size[1] <= budget_gb * 1e9


def is_cached(dataset: Dataset) -> bool:
    if isinstance(dataset, ConcatDataset):
        return all(is_cached(part) for part in dataset.datasets)
    return dataset.images is not None


def photos_by_folder(dataset: Dataset) -> dict[str, int]:
    """How many photos of a PhotoDataset, or of PhotoDatasets concatenated (a refit, extra
    training folders), come from each data folder, in order."""
    if isinstance(dataset, ConcatDataset):
        counts: dict[str, int] = {}
        for part in dataset.datasets:
            for folder, photos in photos_by_folder(part).items():
                counts[folder] = counts.get(folder, 0) + photos
        return counts
    return {str(dataset.folder): len(dataset)}


def attach_teacher(dataset: Dataset, probabilities: torch.Tensor) -> None:
    """Give a PhotoDataset, or PhotoDatasets concatenated, a teacher's ``(N, K + 1)``
    probabilities, one row a photo in the dataset's order."""
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    if len(probabilities) != sum(len(part) for part in parts):
        raise ValueError(f"{len(probabilities)} teacher rows for {len(dataset)} photos")
    for part, rows in zip(parts, probabilities.split([len(p) for p in parts]), strict=True):
        part.teacher = rows.float()


def targets_of(dataset: Dataset, leaving_out: Sequence[Path] = ()) -> torch.Tensor:
    """The classes of a PhotoDataset, or of PhotoDatasets concatenated (a refit, extra
    training folders), but for the photos of the folders ``leaving_out``."""
    if isinstance(dataset, ConcatDataset):
        return torch.cat([targets_of(part, leaving_out) for part in dataset.datasets])
    left_out = {folder.resolve() for folder in leaving_out}
    if Path(dataset.folder).resolve() in left_out:
        return dataset.targets[:0]
    return dataset.targets
