"""Ensembles: several trained counting networks served as one (``bincheck ensemble``).

The members' probabilities, each at its own card's temperature, are averaged
(``model.network.EnsembleNet``); one more temperature over the mean is fitted on the
validation photos, as ``bincheck calibrate`` fits one network's. The members must be
interchangeable as served (backbone, counts, input size, decoding) and must have validated
on the same photos: the same split of the same folder, so that the test photos stay held
out for all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.artifact import Network, read_artifact, write_artifact
from model.card import ModelCard
from model.network import CountingNet, EnsembleNet

from .calibration import calibrate, validation_split_seed
from .evaluate import evaluate_folder

# What the members must share to be served as one network.
SHARED = ("backbone", "max_count", "input_size", "decoding")


def combine(
    members: list[tuple[Network, ModelCard]], version: str
) -> tuple[EnsembleNet, ModelCard]:
    """The ensemble of trained networks and its card (temperature 1, not yet fitted);
    ValueError when the members cannot be served or validated as one."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    cards = [card for _, card in members]
    networks = [net for net, _ in members if isinstance(net, CountingNet)]
    for net, card in members:
        if not isinstance(net, CountingNet):
            raise ValueError(f"{card.version} is an ensemble already: name its members instead")
    first = cards[0]
    for name in SHARED:
        values = {str(getattr(card, name)) for card in cards}
        if len(values) > 1:
            raise ValueError(f"the members differ in {name}: {sorted(values)}")
    seeds = {validation_split_seed(card) for card in cards}
    validated = {card.training["examples"]["val"] for card in cards}
    if len(seeds) > 1 or len(validated) > 1:
        raise ValueError(
            f"the members validated on different photos (split seeds {sorted(seeds)}, "
            f"{sorted(validated)} photos): the test photos would not be held out for all"
        )
    network = EnsembleNet(networks, [card.temperature for card in cards])
    card = ModelCard(
        version=version,
        backbone=first.backbone,
        max_count=first.max_count,
        input_size=first.input_size,
        dropout=first.dropout,
        decoding=first.decoding,
        members=len(members),
        training={
            "data": first.training.get("data"),
            "split_seed": seeds.pop(),
            "examples": first.training["examples"],
            "members": [
                {
                    "version": card.version,
                    "temperature": card.temperature,
                    "command": card.training.get("command"),
                }
                for card in cards
            ],
        },
    )
    return network, card


def ensemble_artifact(
    paths: list[Path],
    folder: Path,
    out: Path,
    *,
    version: str,
    command: str,
    workers: int = 0,
) -> dict[str, Any]:
    """Build the ensemble of the artifacts at ``paths``, fit its temperature on the
    validation photos of ``folder``, score it on the validation and test photos and write
    it to ``out`` with those figures on its card (the validation photos' recommended
    thresholds among them); the report."""
    if any(out.resolve() == path.resolve() for path in paths):
        raise ValueError(f"--out is one of the members ({out}): write the ensemble elsewhere")
    network, card = combine([read_artifact(path) for path in paths], version)
    card.training["command"] = command
    card, calibration = calibrate(network, card, folder, workers=workers)
    write_artifact(out, network, card)
    scored = {
        subset: evaluate_folder(out, folder, subset=subset, workers=workers)[0]
        for subset in ("val", "test")
    }
    for subset, name in (("val", "validation"), ("test", "test")):
        card.metrics.update(
            {
                name: scored[subset]["metrics"],
                f"{name}_intervals": scored[subset]["intervals"],
                f"{name}_decisions": scored[subset]["decision_figures"],
                f"{name}_calibration": scored[subset]["calibration"],
            }
        )
    write_artifact(out, network, card)
    return {
        "model_version": version,
        "out": str(out),
        "calibration": calibration,
        "validation": scored["val"],
        "test": scored["test"],
    }
