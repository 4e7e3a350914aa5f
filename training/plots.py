"""Training curves and confusion matrices as PNG files (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import torch


def plot_training(
    directory: Path, history: list[dict[str, float]], confusion: torch.Tensor, name: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    validated = [h for h in history if "val_loss" in h]  # none in a refit
    val_epochs = [h["epoch"] for h in validated]
    if validated:
        left.plot(val_epochs, [h["val_loss"] for h in validated], label="validation loss")
    left.set_xlabel("epoch")
    left.legend()
    for key in ("val_accuracy", "val_off_by_one"):
        right.plot(val_epochs, [h[key] for h in validated], label=key.removeprefix("val_"))
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.legend()
    figure.tight_layout()
    figure.savefig(directory / "training_curves.png", dpi=100)
    plt.close(figure)
    save_confusion(directory / "confusion_matrix.png", confusion, f"{name} photos")


def save_confusion(path: Path, confusion: torch.Tensor, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = confusion.shape[0]
    labels = [str(i) for i in range(size - 1)] + [f"{size - 1}+"]
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.imshow(confusion.numpy(), cmap="Blues")
    for (row, col), value in zip(
        ((r, c) for r in range(size) for c in range(size)),
        confusion.flatten().tolist(),
        strict=True,
    ):
        axis.text(col, row, str(value), ha="center", va="center", fontsize=8)
    axis.set_xticks(range(size), labels)
    axis.set_yticks(range(size), labels)
    axis.set_xlabel("predicted count")
    axis.set_ylabel("true count")
    axis.set_title(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
