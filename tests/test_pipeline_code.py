"""The training code the CDK app uploads, run the way SageMaker's training toolkit runs it:
from the extracted archive, ``python sagemaker_entry.py --name value ...`` with the
hyperparameters a tuning job passes (its own ``_tuning_objective_metric`` included) and the
SageMaker environment; then its outputs, packed as SageMaker packs them, read by the
pipeline's compare function, and its metrics line read by the tuning job's regexes."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.pipeline.code import build_training_code
from infra.pipeline.jobs import metric_definitions
from lambdas.retraining.storage import TrainingStorage
from training.sagemaker_entry import strip_reserved

from .conftest import SAMPLE_COUNTS, sample_folder


def _data_folder(folder: Path) -> Path:
    """Each sample photo twice for training, once for validation, twice for the test."""
    return sample_folder(folder, ("train", "train", "val", "test", "test"))


def test_the_archive_holds_the_entry_point_packages_and_requirements_and_is_reproducible(tmp_path):
    first = build_training_code(tmp_path / "a.tar.gz")
    second = build_training_code(tmp_path / "b.tar.gz")
    assert first.read_bytes() == second.read_bytes()  # same code, same asset hash
    with tarfile.open(first) as tar:
        names = tar.getnames()
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert {"sagemaker_entry.py", "training/train.py", "model/network.py"} <= set(names)
    assert not [n for n in names if n.startswith("model/default") or "__pycache__" in n]
    assert "timm" in requirements and "matplotlib" in requirements


def test_sagemakers_own_hyperparameter_is_dropped_and_nothing_else():
    argv = ["--lr", "0.001", "--_tuning_objective_metric", "val_accuracy", "--loss", "ce"]
    assert strip_reserved(argv) == ["--lr", "0.001", "--loss", "ce"]
    assert strip_reserved(["--_tuning_objective_metric=val_rmse", "--epochs", "3"]) == [
        "--epochs",
        "3",
    ]


def test_a_training_job_run_from_the_archive_reports_test_figures_the_pipeline_reads(
    tmp_path, model_artifact
):
    code = tmp_path / "opt-ml-code"
    with tarfile.open(build_training_code(tmp_path / "code.tar.gz")) as tar:
        tar.extractall(code, filter="data")
    model_dir, output_dir = tmp_path / "model", tmp_path / "output-data"
    production = tmp_path / "production"  # the channel of the model in production
    production.mkdir()
    shutil.copy(model_artifact, production / "model.tar.gz")
    environment = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "SM_CHANNEL_DATA": str(_data_folder(tmp_path / "data")),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir),
        "SM_CHANNEL_PRODUCTION": str(production),
    }
    hyperparameters = [
        "--epochs", "1", "--weights", "none", "--height", "32", "--width", "48",
        "--select", "accuracy", "--version", "counter-test",
        "--lr", "0.0012", "--batch-size", "4", "--weight-decay", "0.04", "--loss", "ordinal",
        "--_tuning_objective_metric", "val_accuracy",
    ]  # fmt: skip

    result = subprocess.run(
        [sys.executable, "sagemaker_entry.py", *hyperparameters],
        cwd=code,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("epoch=")]
    for definition in metric_definitions():
        assert re.search(definition["Regex"], line), (definition, line)
    assert (model_dir / "model.pt").is_file() and (model_dir / "code" / "inference.py").is_file()
    packed = io.BytesIO()  # SageMaker tars SM_OUTPUT_DATA_DIR into output.tar.gz
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        for path in output_dir.iterdir():
            tar.add(path, arcname=path.name)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="training")
        s3.put_object(
            Bucket="training", Key="jobs/r/j/output/output.tar.gz", Body=packed.getvalue()
        )
        test, paired = TrainingStorage(s3).job_figures("s3://training/jobs/r/j/output/model.tar.gz")
    assert {"accuracy", "off_by_one", "rmse", "mae"} <= set(test)
    assert test["n_all"] == 2 * len(SAMPLE_COUNTS)  # the test split's photos, not validation's
    # ... and the production model's on the same photos, which the promotion decides on.
    assert paired["model_version"] == "test-1"
    assert paired["metrics"]["n_all"] == test["n_all"]
    difference = paired["difference"]["accuracy"]
    assert difference["value"] == pytest.approx(test["accuracy"] - paired["metrics"]["accuracy"])
