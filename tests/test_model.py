"""The network factory and the model artifact."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from importlib import metadata

import pytest
import torch
from torch import nn

from model.artifact import build_model, read_artifact, repack, write_artifact
from model.backbones import create_backbone
from model.card import ModelCard
from model.folding import fold_batchnorm

from .conftest import SAMPLES, SHARED_WEIGHTS


@pytest.mark.parametrize("backbone", ["timm/tf_efficientnet_lite0", "torchvision/resnet18"])
def test_factory_builds_a_distribution_over_counts_from_uint8_photos(backbone):
    card = ModelCard(version="v", backbone=backbone, max_count=7, input_size=(64, 96))
    model = build_model(card).eval()
    photos = torch.randint(0, 256, (2, 3, 64, 96), dtype=torch.uint8)
    with torch.inference_mode():
        logits = model(photos)
        same_as_floats = model(photos.float() / 255)
    assert logits.shape == (2, 8)  # counts 0..6 and "7 or more"
    torch.testing.assert_close(logits, same_as_floats)


@pytest.mark.parametrize("backbone", ["timm/tf_efficientnet_lite0", "torchvision/resnet18"])
def test_folding_batchnorm_keeps_the_networks_answers(backbone):
    card = ModelCard(version="v", backbone=backbone, max_count=5, input_size=(64, 96))
    model = build_model(card)
    generator = torch.Generator().manual_seed(0)
    for norm in model.modules():  # statistics as training leaves them, not the identity
        if isinstance(norm, nn.BatchNorm2d):
            shape, size = norm.running_mean.shape, norm.num_features
            norm.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
            norm.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
    photos = torch.randint(0, 256, (3, 3, 64, 96), dtype=torch.uint8, generator=generator)

    folded, count = fold_batchnorm(model, photos[:2])

    assert count == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 10
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        torch.testing.assert_close(folded(photos), model(photos), atol=1e-4, rtol=1e-4)


def test_folding_is_refused_where_modules_run_in_another_order_than_registered():
    class NormFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.norm = nn.BatchNorm2d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.norm(x))

    model = NormFirst().eval()
    model.norm.running_mean.fill_(0.5)
    model.norm.running_var.fill_(4.0)

    assert fold_batchnorm(model, torch.rand(2, 3, 8, 8)) is None


def test_unknown_backbone_library_is_refused():
    with pytest.raises(ValueError, match="expected 'timm/<arch>' or 'torchvision/<arch>'"):
        create_backbone("keras/resnet50")


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="needs ../shared/weights")
def test_local_backbone_weights_load_and_a_mismatched_file_is_refused(tmp_path):
    backbone = create_backbone("timm/tf_efficientnet_lite0", SHARED_WEIGHTS)
    expected = torch.load(SHARED_WEIGHTS, weights_only=True)["conv_stem.weight"]
    torch.testing.assert_close(backbone.module.state_dict()["conv_stem.weight"], expected)
    assert backbone.mean == (0.5, 0.5, 0.5)

    wrong = tmp_path / "resnet.pth"
    torch.save(create_backbone("torchvision/resnet18").module.state_dict(), wrong)
    with pytest.raises(ValueError, match="does not fit the backbone"):
        create_backbone("timm/tf_efficientnet_lite0", wrong)


def test_artifact_round_trip(model_artifact, tmp_path):
    model, card = read_artifact(model_artifact)
    assert card.version == "test-1"
    assert (card.max_count, card.input_size) == (5, (96, 128))

    with tarfile.open(model_artifact) as tar:
        names = set(tar.getnames())
        assert {
            "model.pt",
            "model_card.json",
            "code/inference.py",
            "code/model/network.py",
            "lib/timm/__init__.py",
            f"lib/timm-{metadata.version('timm')}.dist-info/licenses/LICENSE",
        } <= names
        # Nothing the toolkit would pip-install at start, no bytecode, no ImageNet labels.
        assert "code/requirements.txt" not in names
        assert not [n for n in names if "__pycache__" in n or n.startswith("lib/timm/data/_info")]
        tar.extractall(tmp_path, filter="data")  # as SageMaker does into /opt/ml/model
    assert oct(model_artifact.stat().st_mode & 0o777) == "0o644"

    again, card_again = read_artifact(tmp_path)
    assert card_again == card
    photos = torch.randint(0, 256, (1, 3, 96, 128), dtype=torch.uint8)
    with torch.inference_mode():
        torch.testing.assert_close(model(photos), again(photos))


def test_artifact_refuses_a_card_that_does_not_match(tmp_path):
    card = ModelCard(
        version="v", backbone="timm/tf_efficientnet_lite0", max_count=5, input_size=(64, 64)
    )
    other = ModelCard(
        version="v", backbone="timm/tf_efficientnet_lite0", max_count=9, input_size=(64, 64)
    )
    with pytest.raises(ValueError, match="model has K=5, card says 9"):
        write_artifact(tmp_path / "m.tar.gz", build_model(card), other)


def test_artifact_code_runs_without_the_repository(model_artifact, tmp_path):
    """The container imports code/inference.py with code/ on the path and nothing else;
    timm comes from the artifact's lib/ (tests/test_toolkit_serving.py hides this
    environment's)."""
    with tarfile.open(model_artifact) as tar:
        tar.extractall(tmp_path, filter="data")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1] + '/code');"
        "import inference, model;"
        "p = inference.model_fn(sys.argv[1]);"
        "import timm;"
        "assert model.__file__.startswith(sys.argv[1]), model.__file__;"
        "assert timm.__file__.startswith(sys.argv[1] + '/lib/'), timm.__file__;"
        "data = open(sys.argv[2], 'rb').read();"
        "print(inference.transform_fn(p, data, 'image/jpeg', 'application/json')[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), str(SAMPLES / "images" / "00579.jpg")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"model_version": "test-1"' in result.stdout


def test_repack_keeps_the_weights_and_card_and_brings_this_checkouts_code(model_artifact, tmp_path):
    """``repack`` rebuilds a shipped artifact's code/ and lib/ (older code, a
    requirements.txt the toolkit would pip-install at every start) around the same bytes of
    model.pt and model_card.json; the same contents give the same file."""
    with tarfile.open(model_artifact) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    older = {
        "model.pt": files["model.pt"],
        "model_card.json": files["model_card.json"],
        "code/inference.py": b"from model.inference import input_fn  # noqa\n",
        "code/requirements.txt": b"timm>=1.0.9\n",
    }
    source = tmp_path / "older.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        for name, data in older.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    first = repack(source, tmp_path / "first.tar.gz")
    with tarfile.open(first) as tar:
        repacked = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert repacked == files  # what write_artifact writes today, weights and card untouched
    assert repack(source).read_bytes() == first.read_bytes()  # in place, byte for byte

    (tmp_path / "weights.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ValueError, match="is not a model artifact"):
        repack(tmp_path / "weights.tar.gz")
