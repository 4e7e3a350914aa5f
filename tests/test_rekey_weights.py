"""benchmarks/rekey_weights.py: another implementation's weights loaded as a timm backbone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import timm
import torch

from model.backbones import create_backbone

_spec = importlib.util.spec_from_file_location(
    "rekey_weights", Path(__file__).resolve().parents[1] / "benchmarks" / "rekey_weights.py"
)
rekey_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rekey_weights)


def _foreign(architecture: str) -> dict[str, torch.Tensor]:
    """A randomly initialised network's weights under other names, in timm's order."""
    torch.manual_seed(0)
    state = timm.create_model(architecture, pretrained=False).state_dict()
    return {f"_blocks.{i}.{k.rpartition('.')[2]}": t for i, (k, t) in enumerate(state.items())}


def test_weights_under_other_names_load_as_the_backbone_with_every_tensor_in_place(tmp_path):
    foreign = _foreign("tf_efficientnet_lite0")
    path = tmp_path / "lite0.pth"
    torch.save(rekey_weights.rekey(foreign, "tf_efficientnet_lite0"), path)

    backbone = create_backbone("timm/tf_efficientnet_lite0", path)

    loaded = backbone.module.state_dict()
    expected = [
        t
        for k, t in zip(
            timm.create_model("tf_efficientnet_lite0").state_dict(), foreign.values(), strict=True
        )
        if not k.startswith("classifier.") and not k.endswith("num_batches_tracked")
    ]
    got = [t for k, t in loaded.items() if not k.endswith("num_batches_tracked")]
    assert len(got) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_weights_of_another_architecture_or_order_are_refused_naming_what_does_not_fit():
    with pytest.raises(ValueError, match="tf_efficientnet_lite0 has 247 tensors, the file 3"):
        rekey_weights.rekey(_foreign("tf_efficientnet_lite2"), "tf_efficientnet_lite0")
    reordered = dict(reversed(_foreign("tf_efficientnet_lite0").items()))
    with pytest.raises(ValueError, match=r"does not fit tf_efficientnet_lite0.s conv_stem\.weight"):
        rekey_weights.rekey(reordered, "tf_efficientnet_lite0")
