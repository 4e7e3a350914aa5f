"""The training pipeline as synthesized: the state machine's definition (tuning, spot
training with checkpoints, catches, rollback alarms), IAM, bucket, record, schedule."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Match

from infra.app import build
from infra.config import BinCheckConfig
from infra.pipeline.construct import check_settings
from lambdas.retraining.request import FIGURES

from .pipeline_synth import ACCOUNT, ENDPOINT, REGION, SETTINGS, pipeline_stack

REPO = Path(__file__).resolve().parents[1]
METRICS_LINE = (
    "epoch=3 train_loss=2.4012 val_loss=2.3986 val_accuracy=0.3590 val_off_by_one=0.7949 "
    "val_rmse=1.2987 val_mae=0.9615 train_s=41.2500 samples_per_s=310.3030 data_wait_s=3.3000 "
    "data_wait_share=0.0800"
)
TRAINING_ROLE = "Training pipeline jobs: read data/, write checkpoints/, jobs/ and profiler/"
# AWS's "Amazon SageMaker Debugger Registry URLs for Built-in Rule Evaluators", in part.
RULE_ACCOUNTS = {
    "us-east-1": "503895931360",
    "us-west-2": "895741380848",
    "eu-west-1": "929884845733",
    "ap-south-1": "904829902805",
}


@pytest.fixture(scope="module")
def stack():
    return pipeline_stack()


@pytest.fixture(scope="module")
def resources(stack) -> dict[str, Any]:
    return stack.raw["Resources"]


def _tokens(value: Any) -> str:
    """A CloudFormation reference inside the definition, as readable text."""
    if "Ref" in value:
        return f"Ref({value['Ref']})"
    if "Fn::GetAtt" in value:
        return f"GetAtt({'.'.join(value['Fn::GetAtt'])})"
    if "Fn::FindInMap" in value:
        mapping, _, key = value["Fn::FindInMap"]
        return f"FindInMap({mapping}.{key})"
    if "Fn::Sub" in value:
        return value["Fn::Sub"]
    raise AssertionError(value)


@pytest.fixture(scope="module")
def definition(resources) -> dict[str, Any]:
    [machine] = [r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else _tokens(p) for p in parts))


def _ids(resources: dict, kind: str, **properties: Any) -> list[str]:
    return [
        logical
        for logical, r in resources.items()
        if r["Type"] == kind and all(r["Properties"].get(k) == v for k, v in properties.items())
    ]


def test_tuning_is_bayesian_over_the_four_options_with_early_stopping_on_spot(definition, stack):
    state = definition["States"]["Start tuning job"]
    assert state["Resource"].endswith(":states:::aws-sdk:sagemaker:createHyperParameterTuningJob")
    request = state["Parameters"]
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type.$": "$.run.objective.type",
        "MetricName.$": "$.run.objective.metric",
    }
    ranges = config["ParameterRanges"]
    assert {(r["Name"], r["ScalingType"]) for r in ranges["ContinuousParameterRanges"]} == {
        ("lr", "Logarithmic"),
        ("weight-decay", "Linear"),
    }
    assert [r["Name"] for r in ranges["IntegerParameterRanges"]] == ["batch-size"]
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "loss", "Values.$": "$.run.ranges.losses"}
    ]
    trials = request["TrainingJobDefinition"]
    _assert_spot_job(trials, "$.run.checkpoints.tuning", stack)
    assert (
        trials["StaticHyperParameters.$"]
        == "States.JsonMerge($.code, $.run.hyperparameters, false)"
    )
    # The tuning job's regexes read train.py's line; its objective is one of them.
    definitions = trials["AlgorithmSpecification"]["MetricDefinitions"]
    read = {d["Name"]: float(re.search(d["Regex"], METRICS_LINE)[1]) for d in definitions}
    assert read["val_accuracy"] == 0.359 and read["val_rmse"] == 1.2987
    assert {f"val_{figure}" for figure in FIGURES} <= set(read)
    # ... and the epoch's speed, as SageMaker metrics of every job.
    assert (read["samples_per_s"], read["data_wait_s"], read["data_wait_share"]) == (
        310.303,
        3.3,
        0.08,
    )
    assert read["train_s"] == 41.25
    # SageMaker's API has no profiler fields for a tuning job's trials (botocore's model).
    model = botocore.session.get_session().get_service_model("sagemaker")
    members = model.shape_for("HyperParameterTrainingJobDefinition").members
    profiler = {"ProfilerConfig", "ProfilerRuleConfigurations"}
    assert not profiler & set(members) and not profiler & set(trials)


def test_the_final_model_trains_on_spot_with_checkpoints_and_the_best_hyperparameters(
    definition, stack
):
    state = definition["States"]["Start final training job"]
    assert state["Resource"].endswith(":states:::aws-sdk:sagemaker:createTrainingJob")
    request = state["Parameters"]
    _assert_spot_job(request, "$.run.checkpoints.final", stack)
    assert request["HyperParameters.$"] == (
        "States.JsonMerge(States.JsonMerge($.code, $.run.hyperparameters, false), "
        "$.best.hyperparameters, false)"
    )
    reuse = definition["States"]["Reuse the best trial?"]
    assert reuse["Choices"][0] == {
        "Variable": "$.run.reuse_best_tuning_job",
        "BooleanEquals": True,
        "Next": "Candidate: the best trial",
    }


def test_the_final_training_job_is_profiled_into_the_training_bucket_with_a_report(
    definition, stack
):
    request = definition["States"]["Start final training job"]["Parameters"]
    # Under profiler/<run>/ of the training bucket (the stack's TrainingBucket output).
    bucket = stack.raw["Outputs"]["TrainingBucket"]["Value"]["Ref"]
    output = f"States.Format('s3://Ref({bucket})/profiler/{{}}/', $.run.run_id)"
    assert request["ProfilerConfig"] == {
        "S3OutputPath.$": output,
        "ProfilingIntervalInMilliseconds": 500,  # CPU, GPU, memory and I/O twice a second
    }
    [rule] = request["ProfilerRuleConfigurations"]
    image = rule.pop("RuleEvaluatorImage")
    assert rule == {
        "RuleConfigurationName": "ProfilerReport",
        "RuleParameters": {"rule_to_invoke": "ProfilerReport"},
        "S3OutputPath.$": output,
    }
    # Debugger's rule image, pinned per region from AWS's registry accounts.
    mapping, key = re.fullmatch(r"FindInMap\((\w+)\.(\w+)\)", image).groups()
    images = stack.raw["Mappings"][mapping]
    assert key == "uri" and set(RULE_ACCOUNTS) <= set(images)
    for region, account in RULE_ACCOUNTS.items():
        assert images[region] == {
            "uri": f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-debugger-rules:latest",
            "registry": account,
        }


def test_a_region_without_debuggers_rule_image_is_refused_at_synthesis_if_profiled():
    """Where the stack's region is known at synthesis; an environment-agnostic template
    names the region only at deployment, where CloudFormation refuses a missing mapping."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    region = Environment(account=ACCOUNT, region="il-central-1")
    context["bincheck"] = {"training_profiler": True}
    with pytest.raises(ValueError, match=r"^cannot deploy to il-central-1: .* ProfilerReport"):
        build(App(context=context), env=region)
    # Without the profiler (the default), the region is no problem.
    context["bincheck"] = {}
    build(App(context=context), env=region)


def _assert_spot_job(request: dict, checkpoints: str, stack) -> None:
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"] == {
        "S3Uri.$": checkpoints,
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds.$": "$.run.max_runtime_s",
        "MaxWaitTimeInSeconds.$": "$.run.max_wait_s",
    }
    # The data folder, extra training folders, and the production model the job scores on
    # the same test photos: as many channels as the request has folders, so the plan's list
    # (lambdas/retraining/plan.py; its channels: tests/test_retraining_rules.py).
    assert "InputDataConfig" not in request
    assert request["InputDataConfig.$"] == "$.run.channels"
    image = request["AlgorithmSpecification"]["TrainingImage"]
    mapping = image.removeprefix("FindInMap(").split(".")[0]
    uri = stack.raw["Mappings"][mapping][REGION]["uri"]
    assert uri == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-gpu-py312"


def test_jobs_run_the_projects_training_code_uploaded_by_the_cdk_app(definition, stack):
    code = definition["States"]["Training code"]["Result"]
    assert code["sagemaker_program"] == "sagemaker_entry.py"
    digest = re.fullmatch(
        rf"s3://cdk-\w+-assets-{ACCOUNT}-{REGION}/(\w+)\.gz",
        code["sagemaker_submit_directory"],
    )[1]
    assets = json.loads((stack.directory / "BinCheck.assets.json").read_text())["files"]
    staged = stack.directory / assets[digest]["source"]["path"]
    with tarfile.open(staged) as archive:
        assert {"sagemaker_entry.py", "training/train.py", "requirements.txt"} <= set(
            archive.getnames()
        )


def test_every_task_catches_every_error_into_the_failure_notice(definition):
    states = definition["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert len(tasks) >= 14
    for name, task in tasks.items():
        target = "Failed" if name == "Notify failure" else "Notify failure"
        assert {"ErrorEquals": ["States.ALL"], "Next": target} == {
            k: v for k, v in task["Catch"][0].items() if k != "ResultPath"
        }, name
    assert states["Notify failure"]["Next"] == "Failed"
    assert states["Failed"] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }
    # Each polling loop sends failed jobs to the notice, SageMaker's reason only where present.
    for what in ("tuning job", "candidate training job", "endpoint"):
        choice = states[f"Is the {what} done?"]
        assert choice["Default"] == f"Wait for the {what}"
        with_reason = states[f"The {what} failed"]
        assert with_reason["Next"] == "Notify failure"
        assert "$.poll.FailureReason" in with_reason["Parameters"]["Cause.$"]
        [guard] = [c for c in choice["Choices"] if c["Next"] == f"The {what} failed"]
        assert {"Variable": "$.poll.FailureReason", "IsPresent": True} in guard["And"]


def test_promotion_updates_the_endpoint_with_rollback_on_its_alarms(definition, resources):
    states = definition["States"]
    update = states["Update endpoint"]["Parameters"]
    assert update["EndpointName"] == ENDPOINT
    assert update["RetainAllVariantProperties"] is True  # auto scaling's instance counts
    rollback = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    alarms = [
        f"Ref({logical})"
        for metric in ("ModelLatency", "Invocation5XXErrors")
        for logical in _ids(resources, "AWS::CloudWatch::Alarm", MetricName=metric)
    ]
    assert [a["AlarmName"] for a in rollback] == alarms
    assert update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 600,
    }
    model = states["Create model"]["Parameters"]
    [endpoint_role] = [
        logical
        for logical in _ids(resources, "AWS::IAM::Role")
        if resources[logical]["Properties"].get("Description", "").startswith("Counting endpoint")
    ]
    assert model["ExecutionRoleArn"] == f"GetAtt({endpoint_role}.Arn)"
    assert model["PrimaryContainer"]["ModelDataUrl.$"] == "$.promoted.model_data"  # the copy
    assert model["EnableNetworkIsolation"] is False  # as the CDK app's model (the default)
    # In service on the new configuration only: back on the old one means rolled back.
    done = states["Is the endpoint done?"]["Choices"][0]
    assert {
        "Variable": "$.poll.EndpointConfigName",
        "StringEqualsPath": "$.run.endpoint_config",
    } in done["And"]
    assert {s["Seconds"] for s in states.values() if s["Type"] == "Wait"} == {300, 60}


def test_promotion_serves_and_records_a_copy_under_promoted_with_its_version(definition, stack):
    """The endpoint runs the model's code/: it serves a copy the state machine makes under
    promoted/ (which no training job may write), and the record names its S3 version."""
    states = definition["States"]
    assert states["Better than production?"]["Choices"][0]["Next"] == "Copy model for production"
    copy = states["Copy model for production"]
    assert copy["Resource"].endswith(":states:::aws-sdk:s3:copyObject")
    assert copy["Next"] == "Model for production"
    bucket = f"Ref({stack.raw['Outputs']['TrainingBucket']['Value']['Ref']})"
    assert copy["Parameters"] == {
        "Bucket": bucket,
        "Key.$": "States.Format('promoted/{}/model.tar.gz', $.run.version)",
        # The job's model where SageMaker leaves it: <output path>/<job>/output/.
        "CopySource.$": (
            f"States.Format('{bucket}/jobs/{{}}/{{}}/output/model.tar.gz', "
            "$.run.run_id, $.decision.candidate.job)"
        ),
    }
    # CopyObject answers the new object's version (botocore's model of S3).
    s3 = botocore.session.get_session().get_service_model("s3")
    assert "VersionId" in s3.operation_model("CopyObject").output_shape.members
    assert copy["ResultSelector"] == {"version_id.$": "$.VersionId"}
    assert copy["ResultPath"] == "$.promoted"
    located = states["Model for production"]
    assert located["Parameters"] == {
        "model_data.$": f"States.Format('s3://{bucket}/promoted/{{}}/model.tar.gz', $.run.version)",
        "model_version_id.$": "$.promoted.version_id",
        "job_model_data.$": "$.decision.candidate.model_data",
    }
    assert located["ResultPath"] == "$.promoted" and located["Next"] == "Create model"
    # The record: the candidate's, with the copy and its version for its model.
    record = states["Record production model"]["Parameters"]
    assert record["Value.$"] == (
        "States.JsonToString(States.JsonMerge($.decision.candidate, $.promoted, false))"
    )


def test_every_notice_subject_fits_snss_limit_with_the_longest_endpoint_name(definition):
    """SNS refuses a subject of 100 characters or more: with a 63-character endpoint name
    (SageMaker's longest, this synthesis's) and the longest run version, every subject the
    definition can format is shorter."""
    from lambdas.retraining.plan import run_id

    assert len(ENDPOINT) == 63
    longest = {"$.run.version": f"counter-{run_id('x' * 80, '2026-12-31T23:59:59.999Z')}"}
    subjects = []
    for state in definition["States"].values():
        if not state.get("Resource", "").endswith(":states:::sns:publish"):
            continue
        parameters = state["Parameters"]
        if "Subject" in parameters:
            subjects.append(parameters["Subject"])
            continue
        text, arguments = re.fullmatch(
            r"States\.Format\('(.*)', (.*)\)", parameters["Subject.$"]
        ).groups()
        for path in arguments.split(", "):
            text = text.replace("{}", longest[path], 1)
        subjects.append(text)
    assert len(subjects) == 3  # failed, not promoted, promoted
    assert all(len(subject) < 100 for subject in subjects), subjects
    assert not [s for s in subjects if ENDPOINT in s]


def _statements(resources: dict, role_logical: str) -> list[dict]:
    return [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_logical} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def _role_of(resources: dict, kind: str, **properties: Any) -> str:
    [logical] = _ids(resources, kind, **properties)
    role = (
        resources[logical]["Properties"].get("Role") or resources[logical]["Properties"]["RoleArn"]
    )
    return role["Fn::GetAtt"][0]


def test_the_state_machine_may_pass_roles_to_sagemaker_only_and_touch_its_own_jobs(resources):
    role = _role_of(resources, "AWS::StepFunctions::StateMachine")
    statements = _statements(resources, role)
    [passing] = [s for s in statements if "iam:PassRole" in _actions(s)]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    training_role = _ids(
        resources,
        "AWS::IAM::Role",
        Description=TRAINING_ROLE,
    )
    assert {r["Fn::GetAtt"][0] for r in passing["Resource"]} == {
        training_role[0],
        _endpoint_role(resources),
    }
    sagemaker = [s for s in statements if _actions(s)[0].startswith("sagemaker:")]
    assert {a for s in sagemaker for a in _actions(s)} == {
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:UpdateEndpoint",
        "sagemaker:DescribeEndpoint",
    }
    for statement in sagemaker:
        resources_text = json.dumps(statement["Resource"])
        names = re.findall(
            r":(?:hyper-parameter-tuning-job|training-job|model|endpoint-config|endpoint)/([^\"]+)",
            resources_text,
        )
        assert names and set(names) <= {"bincheck-*", ENDPOINT}, statement
    ssm = [a for s in statements for a in _actions(s) if a.startswith("ssm:")]
    assert sorted(ssm) == ["ssm:PutParameter"]  # the validate function reads the record
    [grant] = [s for s in statements if "kms:CreateGrant" in _actions(s)]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    # The promotion's copy: read a job's model, write under promoted/; nothing else in S3.
    s3 = {
        (a, k)
        for s in statements
        for a in _actions(s)
        if a.startswith("s3:")
        for k in _object_keys(s)
    }
    assert s3 == {
        ("s3:GetObject", "/jobs/*/output/model.tar.gz"),
        ("s3:PutObject", "/promoted/*/model.tar.gz"),
    }
    # SageMaker reads an UpdateEndpoint's rollback alarms as its caller: those two alone.
    [describe] = [s for s in statements if "cloudwatch:DescribeAlarms" in _actions(s)]
    assert _actions(describe) == ["cloudwatch:DescribeAlarms"]
    assert sorted(r["Fn::GetAtt"][0] for r in describe["Resource"]) == sorted(
        logical
        for metric in ("ModelLatency", "Invocation5XXErrors")
        for logical in _ids(resources, "AWS::CloudWatch::Alarm", MetricName=metric)
    )
    assert all(r["Fn::GetAtt"][1] == "Arn" for r in describe["Resource"])


def _endpoint_role(resources: dict) -> str:
    [logical] = [
        logical
        for logical in _ids(resources, "AWS::IAM::Role")
        if resources[logical]["Properties"].get("Description", "").startswith("Counting endpoint")
    ]
    return logical


def _object_keys(statement: dict) -> list[str]:
    """The key patterns of a statement's object ARNs (``<bucket arn>/KEYS``)."""
    text = json.dumps(statement["Resource"])
    return re.findall(r'"(/[^"]*)"', text)


def _shipped_model_key(resources: dict) -> str:
    """The object key of the model the CDK app deploys (the endpoint's first model)."""
    [model] = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Model"]
    url = json.dumps(model["Properties"]["PrimaryContainer"]["ModelDataUrl"])
    return re.search(r"/(\w+\.gz)", url)[1]


def test_the_jobs_and_functions_reach_only_their_own_folders_of_the_bucket(resources):
    training = _ids(
        resources,
        "AWS::IAM::Role",
        Description=TRAINING_ROLE,
    )[0]
    s3 = [s for s in _statements(resources, training) if _actions(s)[0].startswith("s3:")]
    reads = [k for s in s3 if _actions(s) == ["s3:GetObject"] for k in _object_keys(s)]
    writes = [k for s in s3 if _actions(s) == ["s3:PutObject"] for k in _object_keys(s)]
    # Its checkpoints, its outputs, and the profiler's metrics and report: not promoted/,
    # what the endpoint serves, which the state machine alone writes.
    assert set(writes) == {"/checkpoints/*", "/jobs/*", "/profiler/*"}
    # The data, its checkpoints, promoted models (the production channel), the profiler's
    # metrics (the report rule runs with this role), and two objects of the CDK app's
    # assets: the training code and the shipped model.
    assert {"/data/*", "/checkpoints/*", "/promoted/*/model.tar.gz", "/profiler/*"} <= set(reads)
    assert "/jobs/*/output/model.tar.gz" not in reads
    shipped = _shipped_model_key(resources)
    assert any(shipped in json.dumps(s["Resource"]) for s in s3 if _actions(s) == ["s3:GetObject"])
    listings = [s["Condition"] for s in s3 if _actions(s) == ["s3:ListBucket"]]
    assert {
        "StringLike": {
            "s3:prefix": ["data/*", "checkpoints/*", "jobs/*", "promoted/*", "profiler/*"]
        }
    } in listings
    assert {"StringLike": {"s3:prefix": [f"{shipped}*"]}} in listings
    # The report rule's processing job: Debugger's image, and its own logs.
    statements = _statements(resources, training)
    [pull] = [s for s in statements if "ecr:BatchGetImage" in _actions(s)]
    repositories = [json.dumps(r) for r in pull["Resource"]]
    assert [re.findall(r":repository/([\w-]+)", r) for r in repositories] == [
        ["pytorch-training"],
        ["sagemaker-debugger-rules"],
    ]
    assert "ProfilerRuleImage" in repositories[1]  # the registry of the region's rule image
    [logs] = [s for s in statements if "logs:PutLogEvents" in _actions(s)]
    groups = [re.search(r"log-group:([^:]+):\*", json.dumps(r))[1] for r in logs["Resource"]]
    assert groups == ["/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"]

    validate = _role_of(resources, "AWS::Lambda::Function", Handler="retraining.handlers.validate")
    compare = _role_of(resources, "AWS::Lambda::Function", Handler="retraining.handlers.compare")
    [record] = _ids(resources, "AWS::SSM::Parameter")
    [machine] = _ids(resources, "AWS::StepFunctions::StateMachine")
    for role, own in ((validate, "ValidateLogs"), (compare, "CompareLogs")):
        statements = {_actions(s)[0]: s for s in _statements(resources, role)}
        # Its own log group, the record (read again by compare: another run may have
        # promoted meanwhile), its own state machine's runs (one run at a time).
        assert statements["logs:CreateLogStream"]["Resource"]["Fn::GetAtt"][0].startswith(
            f"Training{own}"
        )
        assert _actions(statements["ssm:GetParameter"]) == ["ssm:GetParameter"]
        assert record in json.dumps(statements["ssm:GetParameter"]["Resource"])
        assert statements["states:ListExecutions"]["Resource"] == {"Ref": machine}
    validate_statements = {_actions(s)[0]: s for s in _statements(resources, validate)}
    compare_statements = {_actions(s)[0]: s for s in _statements(resources, compare)}
    assert set(validate_statements) == {
        "logs:CreateLogStream",
        "ssm:GetParameter",
        "s3:ListBucket",
        "s3:GetObject",
        "states:ListExecutions",
    }
    assert _object_keys(validate_statements["s3:GetObject"]) == ["/data/*"]
    assert set(compare_statements) == set(validate_statements) - {"s3:ListBucket"}
    assert _object_keys(compare_statements["s3:GetObject"]) == ["/jobs/*/output/output.tar.gz"]
    endpoint_reads = [
        k for s in _statements(resources, _endpoint_role(resources)) for k in _object_keys(s)
    ]
    assert "/promoted/*/model.tar.gz" in endpoint_reads  # promoted models, as copied
    assert not [k for k in endpoint_reads if k.startswith("/jobs/")]
    every_action = [
        a
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        for a in _actions(s)
    ]
    assert not [a for a in every_action if a == "*" or a.endswith(":*")]


def test_the_functions_get_the_deployments_defaults_and_time_limit(stack):
    for handler in ("retraining.handlers.validate", "retraining.handlers.compare"):
        stack.template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": handler,
                "Runtime": "python3.14",
                "Environment": {
                    "Variables": {
                        "TRAINING_BUCKET": Match.any_value(),
                        "PIPELINE_DEFAULTS": json.dumps(SETTINGS["pipeline_defaults"]),
                        "PIPELINE_TIMEOUT_S": str(72 * 3600),
                        "PRODUCTION_RECORD": Match.any_value(),
                    }
                },
            },
        )


def test_the_state_machine_logs_every_execution_traces_and_has_a_time_limit(stack, definition):
    stack.template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
            "TracingConfiguration": {"Enabled": True},
        },
    )
    assert definition["TimeoutSeconds"] == 72 * 3600
    # An execution that times out or is aborted never reaches its catches: an alarm says so.
    stack.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmDescription": Match.string_like_regexp("timed out or was aborted"),
            "AlarmActions": [{"Ref": Match.string_like_regexp("TopicsOps")}],
        },
    )


def test_the_training_bucket_is_private_encrypted_logged_versioned_and_forgets_old_checkpoints(
    stack,
):
    stack.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": Match.any_value(),
            "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicAcls": True}),
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "training/"}),
            # The production record names its promoted model's version.
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Prefix": "checkpoints/",
                                "ExpirationInDays": 30,
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_the_production_record_starts_as_the_shipped_models_card(resources):
    [record] = _ids(resources, "AWS::SSM::Parameter")
    raw = resources[record]["Properties"]["Value"]
    # A plain string where account and region are known at synthesis, else a join.
    parts = [raw] if isinstance(raw, str) else raw["Fn::Join"][1]
    value = json.loads("".join(p if isinstance(p, str) else _tokens(p) for p in parts))
    with tarfile.open(REPO / "model" / "default" / "model.tar.gz") as artifact:
        card = json.load(artifact.extractfile("model_card.json"))
    assert value["version"] == card["version"]
    assert value["figures"] == card["metrics"]["test"]
    assert value["model_data"].startswith("s3://cdk-")  # the artifact the endpoint serves
    assert value["model_data"].endswith(".gz")


def test_the_schedule_starts_the_pipeline_with_the_deployments_defaults(stack):
    # Off by default: tests/test_infra.py asserts that the default template has no training
    # schedule (its one rule is the review backlog's).
    stack.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(7 days)",
            "Targets": [Match.object_like({"Input": "{}", "Arn": {"Ref": Match.any_value()}})],
        },
    )


def test_the_stack_names_the_pipeline_its_bucket_and_the_record(stack, resources):
    outputs = stack.raw["Outputs"]
    # Each a Ref: the state machine's ARN, the bucket's name, the parameter's name.
    named = {
        name: resources[outputs[name]["Value"]["Ref"]]
        for name in ("TrainingPipeline", "TrainingBucket", "ProductionModelRecord")
    }
    assert {name: r["Type"] for name, r in named.items()} == {
        "TrainingPipeline": "AWS::StepFunctions::StateMachine",
        "TrainingBucket": "AWS::S3::Bucket",
        "ProductionModelRecord": "AWS::SSM::Parameter",
    }
    # The training bucket (not the photos or the access-logs bucket): checkpoints expire there.
    rules = named["TrainingBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [(r["Id"], r.get("Prefix")) for r in rules if "Id" in r] == [
        ("expire-checkpoints", "checkpoints/"),
        ("forget-replaced-data", "data/"),
        ("forget-replaced-jobs", "jobs/"),
        ("forget-replaced-profiler", "profiler/"),
    ]
    # Old versions are forgotten everywhere but under promoted/: a recorded version stays.
    assert not [r for r in rules if r.get("Prefix", "").startswith("promoted")]
    assert all(r.get("Prefix") for r in rules if "NoncurrentVersionExpiration" in r)
    assert named["ProductionModelRecord"]["Properties"]["Description"].startswith(
        "The counting endpoint's model"
    )


def test_cdk_nag_passes_with_the_pipeline_configured(stack):
    report = json.loads((stack.directory / "validation-report.json").read_text())
    [pack] = report["pluginReports"]
    assert pack["conclusion"] == "success" and pack["violations"] == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"pipeline_schedule": "weekly", "pipeline_defaults": {"data": "s3://b/data/x/"}},
            "must be rate",
        ),
        ({"pipeline_schedule": "rate(7 days)"}, "pipeline_schedule needs pipeline_defaults.data"),
        ({"pipeline_defaults": {"max_jobs": 0}}, "pipeline_defaults: invalid training run request"),
        (
            {"pipeline_defaults": {"max_jobs": 200}, "pipeline_timeout_h": 24},
            "more than the pipeline's limit",
        ),
        ({"deployment_bake_s": 7200}, "deployment_bake_s must be 0..3600"),
    ],
)
def test_bad_pipeline_settings_fail_synthesis_with_a_clear_message(settings, message):
    config = BinCheckConfig(**settings)
    with pytest.raises(ValueError, match=re.escape(message)):
        check_settings(config, config.pipeline_timeout_h * 3600)
