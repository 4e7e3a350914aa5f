"""The training pipeline's state machine, as synthesized, executed by moto's Step Functions
engine: every state runs, every SageMaker, SSM, S3 and SNS request goes through botocore
to moto, and the two functions run as Lambda would run them. The engine sends its requests
with botocore's parameter validation off, and moto takes much that AWS would refuse:
``test_pipeline_api_models`` runs these executions again and judges every request by the
services' API models. SageMaker's side (jobs that take a while and end, UpdateEndpoint) is
played by ``sagemaker_sim``; Wait states do not wait. What this cannot show is listed in
docs/retraining.md ("What the tests do not cover").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.retraining import handlers

from .conftest import default_model_card
from .pipeline_moto import (
    MOTO_CONFIG,
    LambdaRuntime,
    MotoStack,
    entered_states,
    instant_waits,
    run_execution,
)
from .pipeline_synth import BUCKET, ENDPOINT, REGION, REPO, pipeline_stack
from .sagemaker_sim import SageMakerSim, Scenario, figures

SHIPPED = REPO / "model" / "default" / "model.tar.gz"
LIVE_CONFIG = "cdk-endpoint-config"  # what the CDK app deployed


@dataclass
class Pipeline:
    arn: str
    stack: MotoStack
    sim: SageMakerSim
    lambdas: LambdaRuntime
    waits: list[int]
    inbox: str
    record_name: str

    def run(self, payload: dict[str, Any], name: str = "run-1") -> dict[str, Any]:
        return run_execution(self.arn, payload, name=name)

    def record(self) -> dict[str, Any]:
        value = boto3.client("ssm").get_parameter(Name=self.record_name)["Parameter"]["Value"]
        return json.loads(value)

    def notices(self) -> list[dict[str, Any]]:
        """What a subscriber of the ops topic received: subject, message, outcome attribute."""
        messages = (
            boto3.client("sqs")
            .receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10)
            .get("Messages", [])
        )
        bodies = [json.loads(m["Body"]) for m in messages]
        return [
            {
                "subject": b["Subject"],
                "message": json.loads(b["Message"]),
                "outcome": b["MessageAttributes"]["outcome"]["Value"],
            }
            for b in bodies
        ]


@pytest.fixture
def pipeline(monkeypatch, model_artifact, no_backoff) -> Iterator[Pipeline]:
    synthesized = pipeline_stack()
    with mock_aws(config=MOTO_CONFIG):
        waits = instant_waits(monkeypatch)
        lambdas = LambdaRuntime()
        lambdas.install(monkeypatch)
        sim = SageMakerSim(Scenario(), model_bytes=model_artifact.read_bytes())
        sim.install(monkeypatch)
        bucket = _training_bucket(synthesized.raw)
        stack = MotoStack(synthesized.raw, region=REGION, names={bucket: BUCKET})
        [machine] = stack.find("AWS::StepFunctions::StateMachine")
        arn = stack.deploy(machine)["Arn"]
        _version_as_declared(synthesized.raw, bucket)
        _deploy_live_endpoint()
        s3 = boto3.client("s3")
        s3.put_object(Bucket=BUCKET, Key="data/abid/labels.csv", Body=b"image_id,count,split\n")
        [record] = [k for k in stack.deployed if k in stack.find("AWS::SSM::Parameter")]
        _upload_shipped_model(stack.deployed[record]["Ref"])
        yield Pipeline(
            arn=arn,
            stack=stack,
            sim=sim,
            lambdas=lambdas,
            waits=waits,
            inbox=_ops_inbox(stack),
            record_name=stack.deployed[record]["Ref"],
        )


def _upload_shipped_model(record_name: str) -> None:
    """The CDK app's model asset where the first record says it is (the jobs read it)."""
    record = json.loads(boto3.client("ssm").get_parameter(Name=record_name)["Parameter"]["Value"])
    bucket, key = record["model_data"][5:].split("/", 1)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=SHIPPED.read_bytes())


def _training_bucket(template: dict) -> str:
    """The bucket the functions' TRAINING_BUCKET names."""
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            if "TRAINING_BUCKET" in variables:
                return variables["TRAINING_BUCKET"]["Ref"]
    raise AssertionError("no function names a training bucket")


def _version_as_declared(template: dict, logical_id: str) -> None:
    """The training bucket's versioning as the template declares it (moto's stand-in
    creates the bucket without it)."""
    versioning = template["Resources"][logical_id]["Properties"].get("VersioningConfiguration")
    if versioning:
        boto3.client("s3").put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": versioning["Status"]}
        )


def _deploy_live_endpoint() -> None:
    sagemaker = boto3.client("sagemaker")
    role = boto3.client("iam").create_role(RoleName="live", AssumeRolePolicyDocument="{}")
    sagemaker.create_model(
        ModelName="cdk-model",
        ExecutionRoleArn=role["Role"]["Arn"],
        PrimaryContainer={
            "Image": "pytorch-inference",
            "ModelDataUrl": "s3://assets/default.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=LIVE_CONFIG,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "cdk-model",
                "InstanceType": "ml.g4dn.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=LIVE_CONFIG)


def _ops_inbox(stack: MotoStack) -> str:
    [topic] = [v["Ref"] for k, v in stack.deployed.items() if k in stack.find("AWS::SNS::Topic")]
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="ops-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    boto3.client("sns").subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
    )
    return url


def _sent(execution: dict, action: str) -> list[dict]:
    """The parameters of each request the execution made to ``action``."""
    return [
        json.loads(e["taskScheduledEventDetails"]["parameters"])
        for e in execution["events"]
        if e.get("taskScheduledEventDetails", {}).get("resource") == action
    ]


def test_a_better_model_is_tuned_trained_on_spot_capacity_and_promoted(pipeline):
    production_before = pipeline.record()

    # An empty input, as the schedule sends: the deployment's defaults apply.
    execution = pipeline.run({})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    run = pipeline.lambdas.invocations[0][1]
    assert run == {
        "input": {},
        "execution": "run-1",
        "execution_arn": execution["executionArn"],
        "state_machine": pipeline.arn,
        "started_at": run["started_at"],
    }
    sagemaker = boto3.client("sagemaker")
    [tuning_name] = [
        t["HyperParameterTuningJobName"] for t in _sent(execution, "createHyperParameterTuningJob")
    ]
    tuning = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    config = tuning["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "val_accuracy",
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    trials = tuning["TrainingJobDefinition"]
    assert trials["EnableManagedSpotTraining"] is True
    run_id = tuning_name.removeprefix("bincheck-")
    assert trials["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/checkpoints/{run_id}/tuning/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert trials["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 14400,
        "MaxWaitTimeInSeconds": 28800,
    }
    static = trials["StaticHyperParameters"]
    assert static["sagemaker_program"] == "sagemaker_entry.py"
    assert static["sagemaker_submit_directory"].startswith("s3://cdk-hnb659fds-assets-")
    assert {static["epochs"], static["workers"], static["select"]} == {"12", "4", "accuracy"}
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in trials["InputDataConfig"]
    }
    # train.py's SM_CHANNEL_DATA, and SM_CHANNEL_PRODUCTION: the model it scores as well.
    assert channels == {
        "data": f"s3://{BUCKET}/data/abid/",
        "production": production_before["model_data"],
    }

    final = sagemaker.describe_training_job(TrainingJobName=f"{tuning_name}-final")
    assert final["EnableManagedSpotTraining"] is True
    # Profiled into the training bucket, with Debugger's report rule: as sent (moto does not
    # keep them; test_pipeline_api_models judges them against SageMaker's model).
    [sent] = _sent(execution, "createTrainingJob")
    profiler = f"s3://{BUCKET}/profiler/{run_id}/"
    assert sent["ProfilerConfig"] == {
        "S3OutputPath": profiler,
        "ProfilingIntervalInMilliseconds": 500,
    }
    assert sent["ProfilerRuleConfigurations"] == [
        {
            "RuleConfigurationName": "ProfilerReport",
            "RuleEvaluatorImage": (
                "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest"
            ),
            "RuleParameters": {"rule_to_invoke": "ProfilerReport"},
            "S3OutputPath": profiler,
        }
    ]
    assert final["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/checkpoints/{run_id}/final/"
    assert final["StoppingCondition"]["MaxWaitTimeInSeconds"] == 28800
    assert final["HyperParameters"] == {**static, **pipeline.sim.scenario.tuned}

    # The endpoint serves a copy under promoted/, which no training job may write, of the
    # model the final job left; the record names that copy's S3 version.
    version = f"counter-{run_id}"
    trained = final["ModelArtifacts"]["S3ModelArtifacts"]
    promoted = f"s3://{BUCKET}/promoted/{version}/model.tar.gz"
    model = sagemaker.describe_model(ModelName=tuning_name)
    assert model["PrimaryContainer"]["ModelDataUrl"] == promoted
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    s3 = boto3.client("s3")
    copy = s3.get_object(Bucket=BUCKET, Key=f"promoted/{version}/model.tar.gz")
    job_key = trained.removeprefix(f"s3://{BUCKET}/")
    assert copy["Body"].read() == s3.get_object(Bucket=BUCKET, Key=job_key)["Body"].read()
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == tuning_name
    [update] = pipeline.sim.updates
    assert update["RetainAllVariantProperties"] is True
    alarms = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert sorted(a["AlarmName"] for a in alarms) == sorted(_endpoint_alarms(pipeline))

    record = pipeline.record()
    assert record["version"] == version
    assert record["figures"] == pipeline.sim.scenario.final_figures
    assert record["model_data"] == promoted
    assert record["model_version_id"] == copy["VersionId"]
    assert record["job_model_data"] == trained
    [notice] = pipeline.notices()
    assert notice["outcome"] == "PROMOTED"
    # Under SNS's 100 characters with the longest endpoint name: that is in the message.
    assert notice["subject"] == f"bincheck: model {version} promoted"
    assert len(ENDPOINT) == 63 and notice["message"]["endpoint"] == ENDPOINT
    assert notice["message"]["promoted"] == {
        "model_data": promoted,
        "model_version_id": copy["VersionId"],
        "job_model_data": trained,
    }
    assert notice["message"]["production"] == production_before
    # Decided on the same photos: the shipped model as the final job scored it.
    assert default_model_card()["version"] == production_before["version"]
    assert notice["message"]["summary"] == (
        "test accuracy (higher is better) on the same 281 photos: candidate 0.4100, "
        "production 0.3600; better by 0.0500 (95% interval of the gain +0.0300 to +0.0700), "
        "margin 0.0100: promote"
    )
    assert json.loads(execution["output"])["promote"] is True
    assert sorted(set(pipeline.waits)) == [60, 300]  # endpoint, jobs


def _endpoint_alarms(pipeline: Pipeline) -> list[str]:
    template = pipeline.stack.template["Resources"]
    return [
        logical
        for logical, resource in template.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == "AWS/SageMaker"
    ]


def test_a_model_not_better_by_the_margin_is_not_promoted(pipeline):
    production = pipeline.record()
    scored = pipeline.sim.scenario.production_figures["accuracy"]  # on the job's photos
    candidate = round(scored + 0.006, 4)  # better, not by 0.01
    pipeline.sim.scenario.final_figures = figures(candidate, 0.82, 1.18, 0.86)
    pipeline.sim.scenario.paired_half_width = 0.001

    execution = pipeline.run({"data": f"s3://{BUCKET}/data/abid/", "promotion_margin": 0.01})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    states = entered_states(execution)
    assert "Notify not promoted" in states and "Create model" not in states
    [notice] = pipeline.notices()
    assert notice["outcome"] == "NOT_PROMOTED"
    assert notice["message"]["candidate"]["figures"]["accuracy"] == candidate
    assert notice["message"]["production"]["figures"] == production["figures"]
    assert notice["message"]["summary"].endswith(
        "better by 0.0060 (95% interval of the gain +0.0050 to +0.0070), margin 0.0100: "
        "keep the production model"
    )
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == LIVE_CONFIG
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == ["cdk-model"]
    assert pipeline.record() == production


def test_a_model_another_run_promoted_meanwhile_is_the_one_to_beat(pipeline, monkeypatch):
    """Runs take hours, and another execution may promote a model after this one read the
    record: the comparison reads the record again and decides against that model, on its
    record's figures (the jobs scored the model it replaced)."""
    shipped = pipeline.record()
    meanwhile = {
        **shipped,
        "version": "counter-meanwhile",
        "job": "bincheck-meanwhile-final",
        "model_data": f"s3://{BUCKET}/jobs/meanwhile/bincheck-meanwhile-final/output/model.tar.gz",
        "test_data": f"s3://{BUCKET}/data/abid/",
        "figures": figures(0.45, 0.88, 0.95, 0.66),
    }
    compare = handlers.compare

    def after_another_promotion(event, context):
        boto3.client("ssm").put_parameter(
            Name=pipeline.record_name, Value=json.dumps(meanwhile), Type="String", Overwrite=True
        )
        return compare(event, context)

    monkeypatch.setattr(handlers, "compare", after_another_promotion)

    execution = pipeline.run({})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    [notice] = pipeline.notices()
    assert notice["outcome"] == "NOT_PROMOTED"
    assert notice["message"]["production"] == meanwhile
    assert notice["message"]["summary"] == (
        "test accuracy (higher is better): candidate 0.4100, production 0.4500; not better by "
        "0.0400, margin 0.0100: keep the production model. The job scored "
        f"{shipped['version']!r}, production is now 'counter-meanwhile': not on the same photos"
    )
    assert pipeline.record() == meanwhile
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == LIVE_CONFIG


def test_a_run_started_while_another_is_running_stops_before_any_job(pipeline, monkeypatch):
    """Two overlapping runs could both compare with the same production model and both
    promote, the second over the first's model unseen: the later one stops at once."""
    compare = handlers.compare
    second: dict[str, Any] = {}

    def while_running(event, context):
        if event["execution_arn"].endswith(":run-1"):  # run-1 is comparing: start run-2
            second.update(pipeline.run({}, name="run-2"))
        return compare(event, context)

    monkeypatch.setattr(handlers, "compare", while_running)

    first = pipeline.run({}, name="run-1")

    assert second["status"] == "FAILED"
    assert second["error"] == "RunInProgress"
    assert "execution run-1 (started " in second["cause"]
    assert first["executionArn"] in second["cause"]
    assert not [s for s in entered_states(second) if "job" in s.lower()]
    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert sorted(n["outcome"] for n in pipeline.notices()) == ["FAILED", "PROMOTED"]
    assert pipeline.record()["execution"] == first["executionArn"]


def test_two_runs_that_missed_each_other_at_the_start_do_not_both_promote(pipeline, monkeypatch):
    """ListExecutions is eventually consistent: two runs started moments apart may both pass
    validate. Hours later the later one stops at its comparison, while the earlier runs."""
    validate, compare = handlers.validate, handlers.compare
    second: dict[str, Any] = {}

    def not_listed_yet(event, context):
        if event["execution"] != "run-2":
            return validate(event, context)
        with pytest.MonkeyPatch.context() as patch:  # run-1 not in run-2's listing yet
            patch.setattr(handlers, "running_executions", lambda sfn, machine: [])
            return validate(event, context)

    def while_running(event, context):
        if event["execution_arn"].endswith(":run-1"):  # run-1 is comparing: run-2 goes through
            second.update(pipeline.run({}, name="run-2"))
        return compare(event, context)

    monkeypatch.setattr(handlers, "validate", not_listed_yet)
    monkeypatch.setattr(handlers, "compare", while_running)

    first = pipeline.run({}, name="run-1")

    assert second["status"] == "FAILED"
    assert second["error"] == "RunInProgress"
    assert f"--execution-arn {first['executionArn']})" in second["cause"]
    assert "model.tar.gz was not compared)" in second["cause"]
    assert "Start final training job" in entered_states(second)  # it trained, then stopped
    assert "Create model" not in entered_states(second)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert sorted(n["outcome"] for n in pipeline.notices()) == ["FAILED", "PROMOTED"]
    assert pipeline.record()["execution"] == first["executionArn"]


def test_a_gain_within_the_noise_of_the_test_photos_is_not_promoted(pipeline):
    # Better than production by 0.05 on its photos (and by more than the margin against
    # the record's figure from other photos); on a test set this small the paired
    # interval spans 0.
    pipeline.sim.scenario.paired_half_width = 0.06

    execution = pipeline.run({})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    [notice] = pipeline.notices()
    assert notice["outcome"] == "NOT_PROMOTED"
    assert notice["message"]["summary"].endswith(
        "better by 0.0500 (95% interval of the gain -0.0100 to +0.1100), margin 0.0100: "
        "keep the production model: the gain is within the photos' noise"
    )


def test_a_production_model_the_jobs_cannot_read_fails_the_run(pipeline):
    record = pipeline.record()
    bucket, key = record["model_data"][5:].split("/", 1)
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)

    execution = pipeline.run({})

    assert execution["status"] == "FAILED"
    [notice] = pipeline.notices()
    assert notice["outcome"] == "FAILED"
    assert f"no objects at {record['model_data']} (channel production)" in json.dumps(
        notice["message"]
    )
    assert pipeline.record() == record


def test_failed_jobs_end_the_run_with_a_failure_notice_and_change_nothing(pipeline):
    production = pipeline.record()
    reason = "CapacityError: Unable to provision requested ML compute capacity."
    pipeline.sim.scenario.training_failure = reason

    training = pipeline.run({}, name="training-fails")

    assert training["status"] == "FAILED"
    assert training["error"] == "TrainingJobFailed"
    assert training["cause"].endswith(f"-final ended Failed: {reason}")
    pipeline.sim.scenario.tuning_failure = "AlgorithmError: see the training jobs' logs"

    tuning = pipeline.run({}, name="tuning-fails")

    assert tuning["status"] == "FAILED"
    assert tuning["error"] == "TuningJobFailed"
    assert "Start final training job" not in entered_states(tuning)
    notices = pipeline.notices()
    assert sorted(n["outcome"] for n in notices) == ["FAILED", "FAILED"]
    assert {n["subject"] for n in notices} == {"bincheck training pipeline failed"}
    errors = {n["message"]["error"]["Error"]: n["message"]["error"]["Cause"] for n in notices}
    assert errors["TrainingJobFailed"].endswith(reason)
    assert errors["TuningJobFailed"].endswith(
        "ended Failed: AlgorithmError: see the training jobs' logs"
    )
    assert all(n["message"]["execution"].startswith("arn:aws:states:") for n in notices)
    assert pipeline.record() == production
    endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == LIVE_CONFIG


def test_a_bad_request_fails_before_sagemaker_is_asked_anything(pipeline):
    execution = pipeline.run(
        {"data": f"s3://{BUCKET}/data/abid/", "max_jobs": 0, "lr": [0.1, 0.01]}
    )

    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidRequest"
    message = json.loads(execution["cause"])["errorMessage"]
    assert "max_jobs must be a whole number in 1..500, got 0" in message
    assert "lr must be [min, max]" in message

    missing = pipeline.run({"data": f"s3://{BUCKET}/data/nothing-here/"}, name="run-2")

    assert missing["error"] == "InvalidRequest"
    assert f"no data folder at s3://{BUCKET}/data/nothing-here/ (no labels.csv)" in missing["cause"]
    assert [n["outcome"] for n in pipeline.notices()] == ["FAILED", "FAILED"]
    assert (
        boto3.client("sagemaker").list_hyper_parameter_tuning_jobs()[
            "HyperParameterTuningJobSummaries"
        ]
        == []
    )


def test_an_update_rolled_back_by_the_alarms_is_a_failure_and_not_recorded(pipeline):
    production = pipeline.record()
    pipeline.sim.scenario.rollback = ""  # an alarm fired while the new model baked

    execution = pipeline.run({})

    assert execution["status"] == "FAILED"
    assert execution["error"] == "EndpointUpdateFailed"
    assert execution["cause"] == (
        f"endpoint {ENDPOINT} rolled back to {LIVE_CONFIG}: "
        "an alarm fired while the new model baked"
    )
    assert "Record production model" not in entered_states(execution)
    assert pipeline.record() == production
    [notice] = pipeline.notices()
    assert notice["outcome"] == "FAILED"


def test_reusing_the_best_trial_promotes_its_model_without_a_final_job(pipeline):
    execution = pipeline.run({"reuse_best_tuning_job": True})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert "Start final training job" not in entered_states(execution)
    jobs = boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    [trial] = [j["TrainingJobName"] for j in jobs]
    assert trial.endswith("-002-7f3a9c1e")
    record = pipeline.record()
    assert record["job"] == trial
    assert record["figures"] == pipeline.sim.scenario.trial_figures
    # The trial's own model.tar.gz, copied for production.
    assert record["job_model_data"].endswith(f"/{trial}/output/model.tar.gz")
    assert record["model_data"] == f"s3://{BUCKET}/promoted/{record['version']}/model.tar.gz"
    # The trial scored the production model too: the decision is on the same photos.
    [notice] = pipeline.notices()
    assert notice["message"]["summary"].startswith(
        "test accuracy (higher is better) on the same 281 photos: candidate 0.3900, "
        "production 0.3600; better by 0.0300"
    )


def test_extra_data_folders_reach_every_job_as_extra_channels(pipeline):
    from lambdas.retraining.fields import MAX_EXTRA_DATA

    extra = [f"s3://{BUCKET}/data/extra-{i}/" for i in range(MAX_EXTRA_DATA)]
    s3 = boto3.client("s3")
    for folder in extra:
        key = folder.removeprefix(f"s3://{BUCKET}/") + "labels.csv"
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"image_id,count\n")
    production = pipeline.record()["model_data"]

    # The most extra folders a request may name, over the deployment's defaults (data).
    execution = pipeline.run({"extra_data": extra})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    expected = {
        "data": f"s3://{BUCKET}/data/abid/",
        "extra": extra[0],
        **{f"extra{i}": folder for i, folder in enumerate(extra) if i},
        "production": production,
    }
    # As sent (test_pipeline_api_models judges each against SageMaker's model) and as stored.
    [tuning] = _sent(execution, "createHyperParameterTuningJob")
    [final] = _sent(execution, "createTrainingJob")
    sagemaker = boto3.client("sagemaker")
    stored = sagemaker.describe_training_job(TrainingJobName=final["TrainingJobName"])
    for channels in (
        tuning["TrainingJobDefinition"]["InputDataConfig"],
        final["InputDataConfig"],
        stored["InputDataConfig"],
    ):
        assert {
            c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in channels
        } == expected
    assert [n["outcome"] for n in pipeline.notices()] == ["PROMOTED"]

    # An extra folder that is not there stops the next run before SageMaker is asked.
    missing = pipeline.run(
        {"extra_data": [*extra[:1], f"s3://{BUCKET}/data/nothing-here/"]}, name="run-2"
    )
    assert missing["error"] == "InvalidRequest"
    assert f"no data folder at s3://{BUCKET}/data/nothing-here/ (no labels.csv)" in missing["cause"]
    assert len(_sent(missing, "createHyperParameterTuningJob")) == 0
