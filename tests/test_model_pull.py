"""``bincheck model pull``: the model the production record names, downloaded to deploy it
again (moto SSM and S3)."""

from __future__ import annotations

import json
import tarfile

import boto3
import pytest
from moto import mock_aws

from bincheck.cli import main
from infra.archives import write_targz

RECORD = "/bincheck/production-model"
BUCKET = "training"
KEY = "jobs/20261122-101500-ab12/bincheck-20261122-101500-ab12-final/output/model.tar.gz"


@pytest.fixture
def aws():
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


def promoted(model_artifact, tmp_path, version: str):
    """The tests' model as a pipeline job leaves it, its card naming ``version``, uploaded
    where the record will say the job's model is."""
    with tarfile.open(model_artifact) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    card = json.loads(files["model_card.json"])
    files["model_card.json"] = json.dumps({**card, "version": version}).encode()
    artifact = write_targz(tmp_path / "job-model.tar.gz", files)
    boto3.client("s3").upload_file(str(artifact), BUCKET, KEY)
    return artifact


def record(version: str, key: str = KEY, **more: str) -> None:
    value = {
        **more,
        "version": version,
        "job": "bincheck-20261122-101500-ab12-final",
        "model_data": f"s3://{BUCKET}/{key}",
        "test_data": f"s3://{BUCKET}/data/abid/",
        "figures": {"accuracy": 0.41},
        "execution": "arn:aws:states:us-east-1:123456789012:execution:x:y",
    }
    boto3.client("ssm").put_parameter(Name=RECORD, Value=json.dumps(value), Type="String")


@pytest.mark.usefixtures("aws")
def test_pull_downloads_the_model_the_record_names_and_says_how_to_deploy_it(
    model_artifact, tmp_path, capsys
):
    artifact = promoted(model_artifact, tmp_path, "counter-20261122-101500-ab12")
    record("counter-20261122-101500-ab12")
    out = tmp_path / "build" / "production.tar.gz"

    assert main(["model", "pull", "--record", RECORD, "--out", str(out)]) == 0

    assert out.read_bytes() == artifact.read_bytes()
    printed = capsys.readouterr().out
    assert f"counter-20261122-101500-ab12, from s3://{BUCKET}/{KEY}" in printed
    assert f'"model_artifact": "{out}"' in printed
    assert [p.name for p in out.parent.iterdir()] == ["production.tar.gz"]


@pytest.mark.usefixtures("aws")
def test_pull_refuses_a_file_that_is_not_the_recorded_model_and_keeps_the_old_one(
    model_artifact, tmp_path, capsys
):
    promoted(model_artifact, tmp_path, "counter-other")
    record("counter-20261122-101500-ab12")
    out = tmp_path / "build" / "production.tar.gz"
    out.parent.mkdir()
    out.write_bytes(b"pulled last week")

    assert main(["model", "pull", "--record", RECORD, "--out", str(out)]) == 2

    error = capsys.readouterr().err
    assert "holds model 'counter-other'" in error
    assert "names 'counter-20261122-101500-ab12': not the model in production" in error
    assert out.read_bytes() == b"pulled last week"
    assert [p.name for p in out.parent.iterdir()] == ["production.tar.gz"]


@pytest.mark.usefixtures("aws")
def test_pull_names_what_is_missing(tmp_path, capsys):
    out = tmp_path / "production.tar.gz"
    assert main(["model", "pull", "--record", RECORD, "--out", str(out)]) == 2
    assert f"cannot read the production record {RECORD}" in capsys.readouterr().err

    record("counter-x", key="jobs/gone/output/model.tar.gz")
    assert main(["model", "pull", "--record", RECORD, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"cannot download s3://{BUCKET}/jobs/gone/output/model.tar.gz" in error
    assert list(tmp_path.iterdir()) == []

    boto3.client("s3").put_object(Bucket=BUCKET, Key="jobs/gone/output/model.tar.gz", Body=b"x")
    assert main(["model", "pull", "--record", RECORD, "--out", str(out)]) == 2
    assert "is not a model artifact" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pull_needs_a_record_name(monkeypatch, capsys):
    monkeypatch.delenv("PRODUCTION_RECORD", raising=False)
    assert main(["model", "pull"]) == 2
    assert "pass --record NAME" in capsys.readouterr().err


@pytest.mark.usefixtures("aws")
def test_pull_fetches_the_object_version_the_record_names(model_artifact, tmp_path):
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    artifact = promoted(model_artifact, tmp_path, "counter-20261122-101500-ab12")
    [recorded] = s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)["Versions"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"written over since")
    record("counter-20261122-101500-ab12", model_version_id=recorded["VersionId"])
    out = tmp_path / "production.tar.gz"

    assert main(["model", "pull", "--record", RECORD, "--out", str(out)]) == 0

    assert out.read_bytes() == artifact.read_bytes()
