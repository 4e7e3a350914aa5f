"""benchmarks/rekey_weights.py: another implementation's weights loaded as a timm backbone."""

from __future__ import annotations

import pytest
import timm
import torch

from model.backbones import create_backbone

from .conftest import load_benchmark

rekey_weights = load_benchmark("rekey_weights")


def _weights(architecture: str) -> dict[str, torch.Tensor]:
    """A randomly initialised network's weights under timm's names."""
    torch.manual_seed(0)
    return timm.create_model(architecture, pretrained=False).state_dict()


def _foreign(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors in the same order under another implementation's names."""
    return {f"_blocks.{i}.{k.rpartition('.')[2]}": t for i, (k, t) in enumerate(state.items())}


def test_weights_under_other_names_load_as_the_backbone_with_every_tensor_in_place(tmp_path):
    original = _weights("tf_efficientnet_lite0")
    path = tmp_path / "lite0.pth"
    torch.save(rekey_weights.rekey(_foreign(original), "tf_efficientnet_lite0"), path)

    backbone = create_backbone("timm/tf_efficientnet_lite0", path)

    loaded = backbone.module.state_dict()
    expected = {k: t for k, t in original.items() if not k.startswith("classifier.")}
    assert loaded.keys() == expected.keys()
    steps = "num_batches_tracked"  # BatchNorm's counter: not a weight, not carried over
    assert all(torch.equal(loaded[k], t) for k, t in expected.items() if not k.endswith(steps))


def test_weights_of_another_architecture_or_order_are_refused_naming_what_does_not_fit():
    with pytest.raises(ValueError, match="tf_efficientnet_lite0 has 247 tensors, the file 3"):
        rekey_weights.rekey(_foreign(_weights("tf_efficientnet_lite2")), "tf_efficientnet_lite0")
    reordered = dict(reversed(_foreign(_weights("tf_efficientnet_lite0")).items()))
    with pytest.raises(ValueError, match=r"does not fit tf_efficientnet_lite0.s conv_stem\.weight"):
        rekey_weights.rekey(reordered, "tf_efficientnet_lite0")
