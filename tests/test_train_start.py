"""``bincheck train start``: a checked request starts an execution; a bad one starts none."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from bincheck.cli import main

BUCKET = "training-bucket"
DATA = f"s3://{BUCKET}/data/abid/"


@pytest.fixture
def pipeline(monkeypatch):
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/abid/labels.csv", Body=b"image_id,count\n")
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="training",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/pipeline",
        )["stateMachineArn"]
        monkeypatch.setenv("TRAINING_PIPELINE_ARN", arn)
        yield sfn, arn


def _inputs(sfn, arn) -> list[dict]:
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    return [
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        for e in executions
    ]


def test_start_sends_the_fields_given_and_says_how_to_follow_the_run(pipeline, tmp_path, capsys):
    sfn, arn = pipeline
    request = tmp_path / "run.json"
    request.write_text(json.dumps({"max_jobs": 8, "lr": [0.0002, 0.002]}))

    code = main(
        [
            "train", "start", "--data", DATA, "--input", str(request), "--max-parallel-jobs", "4",
            "--set", "epochs=20", "--set", "workers=4", "--reuse-best-tuning-job",
            "--name", "retrain-1",
        ]
    )  # fmt: skip

    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"started {arn.replace(':stateMachine:', ':execution:')}:retrain-1"
    assert out[1].startswith("follow it: aws stepfunctions describe-execution --execution-arn ")
    assert _inputs(sfn, arn) == [
        {
            "data": DATA,
            "max_jobs": 8,
            "max_parallel_jobs": 4,
            "lr": [0.0002, 0.002],
            "reuse_best_tuning_job": True,
            "hyperparameters": {"epochs": "20", "workers": "4"},
        }
    ]


def test_without_data_the_deployments_default_is_used(pipeline):
    sfn, arn = pipeline
    assert main(["train", "start", "--objective", "rmse"]) == 0
    assert _inputs(sfn, arn) == [{"objective": "rmse"}]


def test_a_bad_request_or_missing_data_starts_nothing(pipeline, capsys):
    sfn, arn = pipeline

    assert (
        main(
            [
                "train",
                "start",
                "--data",
                DATA,
                "--max-jobs",
                "2",
                "--max-parallel-jobs",
                "3",
                "--lr",
                "0.1",
                "0.01",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "bincheck: error: invalid training run request:" in err
    assert "  - lr must be [min, max], numbers with min < max within (0, 1]" in err
    assert "  - max_parallel_jobs (3) must not exceed max_jobs (2)" in err

    assert main(["train", "start", "--data", f"s3://{BUCKET}/data/other/"]) == 2
    err = capsys.readouterr().err
    assert f"no data folder (labels.csv) at s3://{BUCKET}/data/other/" in err

    assert main(["train", "start", "--set", "epochs"]) == 2
    assert "--set takes NAME=VALUE, got 'epochs'" in capsys.readouterr().err
    assert _inputs(sfn, arn) == []


def test_dry_run_prints_the_checked_input_and_starts_nothing(pipeline, capsys):
    sfn, arn = pipeline
    assert main(["train", "start", "--data", DATA, "--max-jobs", "4", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out) == {"data": DATA, "max_jobs": 4}
    assert _inputs(sfn, arn) == []


def test_start_says_which_pipeline_is_missing(pipeline, monkeypatch, capsys):
    monkeypatch.delenv("TRAINING_PIPELINE_ARN")
    assert main(["train", "start", "--data", DATA]) == 2
    assert "which pipeline? pass --state-machine ARN or set TRAINING_PIPELINE_ARN" in (
        capsys.readouterr().err
    )
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:nothing"
    assert main(["train", "start", "--data", DATA, "--state-machine", arn]) == 2
    assert "could not start the training pipeline: " in capsys.readouterr().err


def test_a_run_in_progress_is_named_and_no_second_one_started(pipeline, capsys):
    sfn, arn = pipeline
    first = arn.replace(":stateMachine:", ":execution:") + ":first"
    assert main(["train", "start", "--data", DATA, "--name", "first"]) == 0
    capsys.readouterr()

    assert main(["train", "start", "--data", DATA, "--name", "second"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("bincheck: error: one training run at a time, and execution first (")
    assert f"stop-execution --execution-arn {first})" in err
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == ["first"]
    sfn.stop_execution(executionArn=first)
    assert main(["train", "start", "--data", DATA, "--name", "second"]) == 0


def test_extra_data_folders_are_checked_like_data_and_sent(pipeline, capsys):
    sfn, arn = pipeline
    extra = [f"s3://{BUCKET}/data/abid-224/", f"s3://{BUCKET}/data/more"]
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="data/abid-224/labels.csv", Body=b"image_id,count\n")

    # A folder that is not there is named; nothing starts.
    assert main(["train", "start", "--data", DATA, "--extra-data", *extra, "--dry-run"]) == 2
    assert f"no data folder (labels.csv) at s3://{BUCKET}/data/more/" in capsys.readouterr().err

    s3.put_object(Bucket=BUCKET, Key="data/more/labels.csv", Body=b"image_id,count\n")
    assert main(["train", "start", "--data", DATA, "--extra-data", *extra, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out) == {"data": DATA, "extra_data": extra}
    # Without --data (the deployment's default), the extra folders are still looked up.
    assert main(["train", "start", "--extra-data", extra[0], "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out) == {"extra_data": extra[:1]}

    assert (
        main(["train", "start", "--data", DATA, "--extra-data", "/local/photos", DATA, extra[0]])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "  - extra_data[0] must be an S3 folder URI s3://BUCKET/data/NAME/, got '/local/photos'"
        in err
    )
    assert f"  - extra_data[1] is the data folder {DATA}: its validation and test photos" in err
    assert _inputs(sfn, arn) == []

    assert main(["train", "start", "--data", DATA, "--extra-data", *extra]) == 0
    assert _inputs(sfn, arn) == [{"data": DATA, "extra_data": extra}]
