"""The training pipeline's two functions against moto's S3, as the state machine calls
them: what they return, and the errors (their class name is the state's error) they raise."""

from __future__ import annotations

import json
from datetime import UTC

import boto3
import pytest
from moto import mock_aws

from lambdas.retraining import handlers
from lambdas.retraining.decision import RecordError
from lambdas.retraining.request import InvalidRequest
from lambdas.retraining.runs import RunInProgress

from .sagemaker_sim import figures, train_py_output

BUCKET = "training-bucket"
DATA = f"s3://{BUCKET}/data/abid/"
JOB_OUTPUT = f"s3://{BUCKET}/jobs/run/bincheck-run-final/output/"
RECORD = "/bincheck/production-model"
SHIPPED = {
    "version": "counter-lite0-ordinal-median-ema",
    "model_data": "s3://cdk-assets/fbb3cd56.gz",
    "figures": {"accuracy": 0.363},
}
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:training"
# moto runs no execution: each stays RUNNING, as a run does for hours.
WAIT = {"StartAt": "Train", "States": {"Train": {"Type": "Wait", "Seconds": 3600, "End": True}}}


@pytest.fixture
def bucket(monkeypatch):
    monkeypatch.setenv("TRAINING_BUCKET", BUCKET)
    monkeypatch.setenv("PIPELINE_DEFAULTS", json.dumps({"max_jobs": 4, "max_parallel_jobs": 2}))
    monkeypatch.setenv("PIPELINE_TIMEOUT_S", str(72 * 3600))
    monkeypatch.setenv("PRODUCTION_RECORD", RECORD)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("ssm").put_parameter(Name=RECORD, Value=json.dumps(SHIPPED), Type="String")
        sfn = boto3.client("stepfunctions")
        sfn.create_state_machine(
            name="training",
            definition=json.dumps(WAIT),
            roleArn="arn:aws:iam::123456789012:role/training",
        )
        sfn.start_execution(stateMachineArn=MACHINE, name="run-1")
        yield s3


def _event(payload: dict, execution: str = "run-1") -> dict:
    return {
        "input": payload,
        "execution": execution,
        "execution_arn": MACHINE.replace(":stateMachine:", ":execution:") + f":{execution}",
        "state_machine": MACHINE,
        "started_at": "2026-11-21T09:00:00.000Z",
    }


def test_validate_returns_the_plan_for_a_request_whose_data_is_there(bucket):
    bucket.put_object(Bucket=BUCKET, Key="data/abid/labels.csv", Body=b"image_id,count\n")

    validated = handlers.validate(_event({"data": DATA}), None)
    run = validated["run"]

    assert run["run_id"].startswith("20261121-090000-")
    # The record, read once: its model is what the jobs score too, its text what the
    # comparison reads.
    assert run["production_model"] == SHIPPED["model_data"]
    assert json.loads(validated["production"]) == SHIPPED
    assert run["max_jobs"] == 4  # the deployment's default
    assert run["data"] == DATA
    assert run["checkpoints"]["final"].startswith(f"s3://{BUCKET}/checkpoints/")


def test_validate_stops_a_run_while_an_earlier_one_is_running(bucket):
    bucket.put_object(Bucket=BUCKET, Key="data/abid/labels.csv", Body=b"image_id,count\n")
    sfn = boto3.client("stepfunctions")
    first = sfn.describe_execution(executionArn=_event({})["execution_arn"])
    sfn.start_execution(stateMachineArn=MACHINE, name="run-2")

    with pytest.raises(RunInProgress) as stopped:
        handlers.validate(_event({"data": DATA}, "run-2"), None)

    assert str(stopped.value) == (
        "one training run at a time, and execution run-1 (started "
        f"{first['startDate'].astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC) is still running "
        f"(aws stepfunctions stop-execution --execution-arn {first['executionArn']}): "
        "wait for it to end, or stop it, then start this run again"
    )
    # The earlier run goes on; once it has ended, so may the next.
    assert handlers.validate(_event({"data": DATA}), None)["run"]["data"] == DATA
    sfn.stop_execution(executionArn=first["executionArn"])
    assert handlers.validate(_event({"data": DATA}, "run-2"), None)["run"]["data"] == DATA


def test_validate_refuses_a_data_folder_that_is_not_there(bucket):
    bucket.put_object(Bucket=BUCKET, Key="data/abid/images/1.jpg", Body=b"photo")

    with pytest.raises(InvalidRequest) as refused:
        handlers.validate(_event({"data": DATA}), None)

    assert refused.value.problems == [f"no data folder at {DATA} (no labels.csv)"]


def test_validate_refuses_data_outside_the_training_bucket(bucket):
    with pytest.raises(InvalidRequest, match="data must be in the pipeline's bucket"):
        handlers.validate(_event({"data": "s3://somewhere-else/data/abid/"}), None)


def test_validate_refuses_what_sagemakers_api_would_before_any_job_starts(bucket):
    bucket.put_object(Bucket=BUCKET, Key="data/abid/labels.csv", Body=b"image_id,count\n")
    request = {
        "data": DATA,
        "instance_type": "ml.inf2.xlarge",  # an inference type
        "hyperparameters": {f"option_{i}": i for i in range(92)},
    }

    with pytest.raises(InvalidRequest) as refused:
        handlers.validate(_event(request), None)

    assert refused.value.problems == [
        "instance_type must be a type SageMaker trains on, such as ml.g5.xlarge, got "
        "'ml.inf2.xlarge' (nearest: ml.p2.xlarge, ml.r8i.xlarge, ml.r7i.xlarge)",
        "hyperparameters may name at most 90 options, got 92: SageMaker takes 100 a job, "
        "and the pipeline sets 10",
    ]


def test_validate_refuses_a_record_without_a_model_before_any_job_starts(bucket):
    bucket.put_object(Bucket=BUCKET, Key="data/abid/labels.csv", Body=b"image_id,count\n")
    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name=RECORD, Value=json.dumps({**SHIPPED, "model_data": None}), Overwrite=True
    )
    with pytest.raises(RecordError, match=f"{RECORD} names no model artifact to compare with"):
        handlers.validate(_event({"data": DATA}), None)
    ssm.put_parameter(Name=RECORD, Value="counter-v1", Overwrite=True)
    with pytest.raises(RecordError, match=f"{RECORD} is not JSON"):
        handlers.validate(_event({"data": DATA}), None)


def _compare_event(production: str | None = None, execution: str = "run-1") -> dict:
    """The compare state's input; ``production``, if given, is the record's text now."""
    if production is not None:
        boto3.client("ssm").put_parameter(
            Name=RECORD, Value=production, Type="String", Overwrite=True
        )
    run = {
        "version": "counter-run",
        "data": DATA,
        "promotion": {"metric": "accuracy", "margin": 0.01},
    }
    return {
        "run": run,
        "job": "bincheck-run-final",
        "model_data": JOB_OUTPUT + "model.tar.gz",
        "execution_arn": _event({}, execution)["execution_arn"],
        "state_machine": MACHINE,
        "started_at": "2026-11-21T09:00:00.000Z",
    }


def test_compare_reads_the_jobs_test_figures_and_decides(bucket):
    bucket.put_object(
        Bucket=BUCKET,
        Key="jobs/run/bincheck-run-final/output/output.tar.gz",
        Body=train_py_output(figures(0.41, 0.86, 1.0, 0.7)),
    )
    production = {"version": "v1", "test_data": "old", "figures": {"accuracy": 0.356}}

    decision = handlers.compare(_compare_event(json.dumps(production)), None)

    assert decision["promote"] is True
    assert decision["candidate"]["figures"]["accuracy"] == 0.41
    assert decision["candidate"]["figures"]["n"] == 281.0
    assert decision["production"] == production
    assert json.loads(decision["record"]) == decision["candidate"]
    assert decision["candidate"]["model_data"] == JOB_OUTPUT + "model.tar.gz"


def test_compare_decides_on_the_production_models_figures_from_the_same_job(bucket):
    against = {
        "model_version": "v1",
        "photos": "test",
        "metrics": {"accuracy": 0.40, "n": 281.0},
        "difference": {"accuracy": {"value": 0.01, "interval": [-0.04, 0.06]}},
    }
    bucket.put_object(
        Bucket=BUCKET,
        Key="jobs/run/bincheck-run-final/output/output.tar.gz",
        Body=train_py_output(figures(0.41, 0.86, 1.0, 0.7), against),
    )
    production = {"version": "v1", "test_data": "old", "figures": {"accuracy": 0.356}}

    decision = handlers.compare(_compare_event(json.dumps(production)), None)

    # 0.41 beats the record's 0.356 from other photos by 0.054, but on its own photos the
    # production model scores 0.40: better by 0.01, within their noise.
    assert decision["promote"] is False
    assert "production 0.4000; better by 0.0100" in decision["summary"]


def test_compare_stops_a_run_while_an_earlier_one_is_still_running(bucket):
    # Two runs started moments apart may both pass validate (ListExecutions is eventually
    # consistent); hours later, the later one stops before it could promote.
    bucket.put_object(
        Bucket=BUCKET,
        Key="jobs/run/bincheck-run-final/output/output.tar.gz",
        Body=train_py_output(figures(0.41, 0.86, 1.0, 0.7)),
    )
    sfn = boto3.client("stepfunctions")
    first = _event({})["execution_arn"]
    sfn.start_execution(stateMachineArn=MACHINE, name="run-2")
    production = json.dumps({"version": "v1", "test_data": "old", "figures": {"accuracy": 0.3}})

    with pytest.raises(RunInProgress) as stopped:
        handlers.compare(_compare_event(production, "run-2"), None)

    message = str(stopped.value)
    assert message.startswith("one training run at a time, and execution run-1 (started ")
    assert f"--execution-arn {first})" in message
    assert message.endswith(f"(this run's model {JOB_OUTPUT}model.tar.gz was not compared)")
    # The earlier run compares and promotes; once it has ended, the later one may compare.
    assert handlers.compare(_compare_event(production), None)["promote"] is True
    sfn.stop_execution(executionArn=first)
    assert handlers.compare(_compare_event(production, "run-2"), None)["promote"] is True


def test_compare_refuses_an_unreadable_record_or_a_job_without_test_figures(bucket):
    with pytest.raises(RecordError, match="/bincheck/production-model is not JSON"):
        handlers.compare(_compare_event("counter-v1"), None)
    with pytest.raises(RecordError, match=r"cannot read the job's figures at .*output\.tar\.gz"):
        handlers.compare(_compare_event(json.dumps({"version": "v1", "figures": {}})), None)
    without_test = train_py_output({})
    bucket.put_object(
        Bucket=BUCKET, Key="jobs/run/bincheck-run-final/output/output.tar.gz", Body=without_test
    )
    with pytest.raises(RecordError, match="has no test figures"):
        handlers.compare(_compare_event(json.dumps({"version": "v1", "figures": {}})), None)


def test_the_functions_say_what_configuration_is_missing(monkeypatch):
    monkeypatch.delenv("TRAINING_BUCKET", raising=False)
    with pytest.raises(RuntimeError, match="TRAINING_BUCKET is required"):
        handlers.validate(_event({"data": DATA}), None)


def test_validate_plans_a_channel_for_each_extra_data_folder_that_is_there(bucket):
    extra = [f"s3://{BUCKET}/data/abid-224/", f"s3://{BUCKET}/data/more/"]
    for key in ("data/abid/labels.csv", "data/abid-224/labels.csv"):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"image_id,count\n")

    # One extra folder has no labels.csv: refused, with the folder named, before any job.
    with pytest.raises(InvalidRequest) as refused:
        handlers.validate(_event({"data": DATA, "extra_data": extra}), None)
    assert refused.value.problems == [f"no data folder at {extra[1]} (no labels.csv)"]

    bucket.put_object(Bucket=BUCKET, Key="data/more/labels.csv", Body=b"image_id,count\n")
    run = handlers.validate(_event({"data": DATA, "extra_data": extra}), None)["run"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in run["channels"]}
    assert channels == {
        "data": DATA,
        "extra": extra[0],
        "extra1": extra[1],
        "production": SHIPPED["model_data"],
    }
    assert run["data"] == DATA  # the test photos' folder, which the record names


def test_validate_refuses_extra_data_outside_the_training_bucket_or_repeated(bucket):
    bucket.put_object(Bucket=BUCKET, Key="data/abid/labels.csv", Body=b"image_id,count\n")
    elsewhere = "s3://somewhere-else/data/abid-224/"
    with pytest.raises(InvalidRequest) as refused:
        handlers.validate(_event({"data": DATA, "extra_data": [elsewhere, DATA]}), None)
    assert refused.value.problems == [
        f"extra_data[0] must be in the pipeline's bucket s3://{BUCKET}/data/, got {elsewhere}",
        f"extra_data[1] is the data folder {DATA}: its validation and test photos would be "
        "trained on",
    ]
