"""The CDK app: synthesised offline, asserted per construct, cdk-nag clean, cfn-lint clean."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

# This machine has Node.js 20: say it once in the README, not in every test run.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Capture, Match, Template

from infra.app import build
from infra.archives import write_targz
from infra.config import BinCheckConfig
from infra.model_artifact import build_serving_artifact
from model.layout import code_files

REPO = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"


def synth(tmp_path: Path, model: Path, **settings) -> tuple[App, Stack]:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    context["bincheck"] = {"model_artifact": str(model), **settings}
    app = App(context=context, outdir=str(tmp_path / "cdk.out"))
    stack = build(app, env=Environment(account="123456789012", region=REGION))
    return app, stack


@pytest.fixture(scope="module")
def synthesized(model_artifact, tmp_path_factory):
    app, stack = synth(
        tmp_path_factory.mktemp("cdk"),
        model_artifact,
        alert_email="ops@example.com",
        data_capture_percent=20,
    )
    assembly = app.synth()  # runs cdk-nag: an unacknowledged finding raises here
    return assembly, Template.from_stack(stack)


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return synthesized[1]


@pytest.fixture(scope="module")
def isolated(model_artifact, tmp_path_factory) -> tuple[Any, Template]:
    """With the endpoint's network isolation on (the checker sends photo bytes) and logs
    kept a year."""
    app, stack = synth(
        tmp_path_factory.mktemp("cdk-isolated"),
        model_artifact,
        endpoint_network_isolation=True,
        endpoint_input="bytes",
        log_retention_days=365,
    )
    return app.synth(), Template.from_stack(stack)


def test_photos_bucket_is_private_encrypted_tls_only_and_aged_out(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "photos/"}),
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {
                            "ExpirationInDays": 365,
                            "Transitions": [
                                {"StorageClass": "STANDARD_IA", "TransitionInDays": 30}
                            ],
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    )
                ]
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_bins_uploads_notify_the_queue_which_redrives_to_a_dead_letter_queue(template):
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    Match.object_like(
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {"FilterRules": [{"Name": "prefix", "Value": "bins/"}]}
                            },
                        }
                    )
                ]
            }
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": 360,  # 6 x the function's 60 s
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": Match.object_like({"maxReceiveCount": 5}),
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [Match.any_value()],
        },
    )


def test_checker_function_runs_the_handler_with_powertools_and_tracing(template):
    layer = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",
            "Handler": "checker.handler.lambda_handler",
            "Timeout": 60,
            "TracingConfig": {"Mode": "Active"},
            "Layers": [layer],
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "BINS_TABLE": Match.any_value(),
                        "CHECKS_TABLE": Match.any_value(),
                        "IDEMPOTENCY_TABLE": Match.any_value(),
                        "ALERTS_TOPIC_ARN": Match.any_value(),
                        "ENDPOINT_NAME": "bincheck-counter",
                        "MATCH_THRESHOLD": "0.449",
                        "MISMATCH_THRESHOLD": "0.022",
                        "ALERT_STATUSES": "MISMATCH,UNCERTAIN",
                        "REVIEW_STATUSES": "MISMATCH,UNCERTAIN",
                        "POWERTOOLS_METRICS_NAMESPACE": "BinChecker",
                    }
                )
            },
        },
    )
    arn = json.dumps(layer.as_object())
    assert "017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:27" in arn
    assert "AWS::Region" in arn  # the layer of whatever region the stack lands in
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 10},
        },
    )


def test_tables_are_on_demand_with_point_in_time_recovery(template):
    template.resource_count_is("AWS::DynamoDB::Table", 3)
    template.all_resources_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "bin_id", "KeyType": "HASH"},
                {"AttributeName": "check_id", "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {
                        "IndexName": "by-status",
                        "KeySchema": [
                            {"AttributeName": "status", "KeyType": "HASH"},
                            {"AttributeName": "check_id", "KeyType": "RANGE"},
                        ],
                    }
                ),
                Match.object_like(
                    {
                        "IndexName": "pending-review",
                        "KeySchema": [
                            {"AttributeName": "pending_review", "KeyType": "HASH"},
                            {"AttributeName": "check_id", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ),
            ],
        },
    )
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {"TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True}},
    )


def test_topics_are_kms_encrypted_and_the_alert_email_is_subscribed(template):
    template.resource_count_is("AWS::SNS::Topic", 2)
    template.all_resources_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    template.all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_cloudwatch_alarms_of_this_account_and_region_may_publish_to_the_ops_topic(template):
    """The topic policy (TLS only) replaces SNS's default one: without its own statement no
    alarm could publish. CloudWatch may, for alarms of this account and region only, and
    may use the topic's key under the same conditions; the alerts topic lets it do neither."""
    raw = template.to_json()
    resources, outputs = raw["Resources"], raw["Outputs"]
    own_alarms = {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:*"},
    }

    def cloudwatch_statements(document: dict) -> list[dict]:
        return [
            {k: v for k, v in _rendered(s).items() if k != "Sid"}
            for s in document["Statement"]
            if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        ]

    def topic_policy(topic: str) -> dict:
        [policy] = [
            r["Properties"]["PolicyDocument"]
            for r in resources.values()
            if r["Type"] == "AWS::SNS::TopicPolicy"
            and r["Properties"]["Topics"] == [{"Ref": topic}]
        ]
        return policy

    def key_policy(topic: str) -> dict:
        key = resources[topic]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
        return resources[key]["Properties"]["KeyPolicy"]

    ops, alerts = outputs["OpsTopic"]["Value"]["Ref"], outputs["AlertsTopic"]["Value"]["Ref"]
    assert cloudwatch_statements(topic_policy(ops)) == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": f"Ref({ops})",
            "Condition": own_alarms,
        }
    ]
    [use_key] = cloudwatch_statements(key_policy(ops))
    assert use_key["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert use_key["Resource"] == "*" and use_key["Condition"] == own_alarms
    assert cloudwatch_statements(topic_policy(alerts)) == []
    assert cloudwatch_statements(key_policy(alerts)) == []
    # And every alarm of the stack notifies the ops topic.
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) >= 6
    assert all({"Ref": ops} in a["AlarmActions"] for a in alarms)


def _rendered(value: Any) -> Any:
    """A template value with its references written out: partitions as ``aws``, a Ref as
    ``Ref(<logical id>)``, joins joined."""
    if isinstance(value, list):
        return [_rendered(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if set(value) == {"Ref"}:
        return f"Ref({value['Ref']})"
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_rendered(p)) for p in parts)
    return {k: _rendered(v) for k, v in value.items()}


def test_endpoint_serves_the_artifact_on_a_pinned_pytorch_image(template):
    mappings = template.find_mappings("*")  # the training pipeline has its own image
    [images] = [m for m in mappings.values() if "pytorch-inference" in m[REGION]["uri"]]
    assert images[REGION]["uri"] == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312"
    )
    assert len(images) > 20  # resolved for every region the SDK knows
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Image": {"Fn::FindInMap": [Match.any_value(), {"Ref": "AWS::Region"}, "uri"]},
                "ModelDataUrl": Match.any_value(),
                "Environment": Match.object_like(
                    {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                    }
                ),
            }
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": Match.any_value(),
            "ProductionVariants": [
                Match.object_like({"InstanceType": "ml.g4dn.xlarge", "InitialInstanceCount": 1})
            ],
            "DataCaptureConfig": Match.object_like(
                {"EnableCapture": True, "InitialSamplingPercentage": 20}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint", {"EndpointName": "bincheck-counter"}
    )


def test_the_endpoint_gets_the_models_weights_and_card_with_this_checkouts_code(
    synthesized, model_artifact, tmp_path
):
    """The container runs the artifact's ``code/``, not the repository's ``model/``: the CDK
    app rebuilds it, so a committed model packed with older code serves this checkout's."""
    with tarfile.open(model_artifact) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    older = {**files, "code/model/network.py": b"# an older handler\n", "code/model/gone.py": b""}
    packed = write_targz(tmp_path / "older.tar.gz", older)
    built, content = build_serving_artifact(packed, tmp_path / "built")

    with tarfile.open(built) as tar:
        deployed = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    # Everything but code/ as packed (weights, card, any vendored libraries), code/ new.
    kept = {name: data for name, data in files.items() if not name.startswith("code/")}
    assert {"model.pt", "model_card.json"} <= kept.keys()
    assert deployed == {**kept, **code_files()}
    again, same = build_serving_artifact(packed, tmp_path / "again")
    assert again.read_bytes() == built.read_bytes() and same == content

    # Another model built into the same folder (the tests' synthesis beside `make synth`)
    # gets its own file; a build of other contents left for over an hour is removed.
    retrained = write_targz(
        tmp_path / "retrained.tar.gz", {**older, "model.pt": files["model.pt"] + b"\0"}
    )
    other, _ = build_serving_artifact(retrained, tmp_path / "built")
    assert other != built and built.is_file()
    os.utime(built, (0, 0))
    assert build_serving_artifact(retrained, tmp_path / "built")[0] == other
    assert sorted(p.name for p in (tmp_path / "built").iterdir()) == [other.name]

    # The synthesized endpoint's model is that build of the configured artifact.
    assembly, template = synthesized
    served = build_serving_artifact(model_artifact, tmp_path / "served")[0].read_bytes()
    [staged] = [p for p in Path(assembly.directory).glob("asset.*.gz") if p.read_bytes() == served]
    [model] = template.find_resources("AWS::SageMaker::Model").values()
    url = json.dumps(model["Properties"]["PrimaryContainer"]["ModelDataUrl"])
    assert f"/{staged.name.split('.')[1]}.gz" in url  # the key is the content hash


def test_the_production_record_names_the_model_the_endpoint_serves(template, model_artifact):
    """Deploying a pulled production model (``bincheck model pull``) as ``model_artifact``
    keeps the endpoint and the pipeline's record on the same model."""
    [parameter] = template.find_resources("AWS::SSM::Parameter").values()
    record = json.loads(parameter["Properties"]["Value"])
    with tarfile.open(model_artifact) as tar:
        assert record["version"] == json.load(tar.extractfile("model_card.json"))["version"]
    [model] = template.find_resources("AWS::SageMaker::Model").values()
    assert record["model_data"] == model["Properties"]["PrimaryContainer"]["ModelDataUrl"]


def test_endpoint_scales_on_invocations_and_alarms_on_latency_and_5xx(template):
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/bincheck-counter/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 1,
            "MaxCapacity": 4,
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": 3000,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                }
            ),
        },
    )
    for metric, threshold in (("ModelLatency", 500_000), ("Invocation5XXErrors", 0)):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/SageMaker",
                "MetricName": metric,
                "Threshold": threshold,
                "AlarmActions": [{"Ref": Match.string_like_regexp("TopicsOps")}],
            },
        )


def test_dashboard_shows_what_operators_watch(template):
    body = Capture()
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardBody": body})
    text = json.dumps(body.as_object())
    for title in (
        "Checks by status",
        "Mismatch rate",
        "Endpoint latency",
        "Endpoint invocations and 5xx",
        "Oldest photo waiting",
        "Dead letters",
        "Checker errors",
        "Review backlog",
    ):
        assert title in text


def test_permissions_are_scoped(template):
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = [
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert "*" not in actions
    assert not [a for a in actions if a.endswith(":*")]
    invoke = [s for s in statements if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert len(invoke) == 1
    assert "endpoint/bincheck-counter" in json.dumps(invoke[0]["Resource"])
    # Every S3 read (Get*/List*) of every role, named by what it reaches.
    assert _s3_reads_by_role(template.to_json()) == {
        # HeadObject/GetObject on photos only: not the data captures, nor another bucket.
        "checker function": {("s3:GetObject", "photos bucket/bins/*")},
        # The model it serves, photos named in s3_uri requests (bins/ only: not the data
        # captures, nor any other object a request could name), and promoted models as
        # the state machine copied them.
        "endpoint": {
            ("s3:GetObject", "model artifact"),
            ("s3:GetObject", "photos bucket/bins/*"),
            ("s3:GetObject", "training bucket/promoted/*/model.tar.gz"),
        },
        "training jobs": {
            ("s3:GetObject", "training bucket/data/*"),
            ("s3:GetObject", "training bucket/checkpoints/*"),
            ("s3:GetObject", "training bucket/promoted/*/model.tar.gz"),
            ("s3:GetObject", "training code"),
            ("s3:GetObject", "model artifact"),
            ("s3:ListBucket", "training bucket?prefix=data/*,checkpoints/*,jobs/*,promoted/*"),
            ("s3:ListBucket", "assets bucket?prefix=model artifact*"),
        },
        # The promotion's copy of a job's model (to promoted/).
        "state machine": {("s3:GetObject", "training bucket/jobs/*/output/model.tar.gz")},
        "validate function": {
            ("s3:GetObject", "training bucket/data/*"),
            ("s3:ListBucket", "training bucket?prefix=data/*"),
        },
        "compare function": {("s3:GetObject", "training bucket/jobs/*/output/output.tar.gz")},
        # Presigned links to the photos of checks a reviewer opens.
        "review function": {("s3:GetObject", "photos bucket/bins/*")},
    }


def _s3_reads_by_role(raw: dict) -> dict[str, set[tuple[str, str]]]:
    """``{role: {(action, what it reaches)}}`` for each s3:Get*/s3:List* action of every IAM
    policy; roles named by what assumes them, buckets by the stack output that names them,
    asset objects by what uses them (the endpoint's model, the state machine's code)."""
    resources, outputs = raw["Resources"], raw["Outputs"]
    buckets = {
        outputs["PhotosBucket"]["Value"]["Ref"]: "photos bucket",
        outputs["TrainingBucket"]["Value"]["Ref"]: "training bucket",
    }
    [model] = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Model"]
    [machine] = [r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    code_text = json.dumps(machine["Properties"]["DefinitionString"])
    artifact_key = model["Properties"]["PrimaryContainer"]["ModelDataUrl"].rsplit("/", 1)[1]
    role_names = {
        model["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]: "endpoint",
        machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]: "state machine",
    }
    handlers = {
        "checker.handler.lambda_handler": "checker function",
        "retraining.handlers.validate": "validate function",
        "retraining.handlers.compare": "compare function",
        "review.handler.lambda_handler": "review function",
    }
    for r in resources.values():
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") in handlers:
            role_names[r["Properties"]["Role"]["Fn::GetAtt"][0]] = handlers[
                r["Properties"]["Handler"]
            ]
    for logical, r in resources.items():
        if r["Type"] == "AWS::IAM::Role" and f'"{logical}' in code_text:
            role_names.setdefault(logical, "training jobs")  # the jobs' RoleArn

    def part(value: Any) -> str:
        if isinstance(value, str):
            if ":s3:::cdk-" in value:  # arn:<partition>:s3:::<assets bucket>[/<key>]
                _, _, key = value.partition(":s3:::")[2].partition("/")
                if not key:
                    return "assets bucket"
                if key == artifact_key:
                    return "model artifact"
                return "training code" if key in code_text else f"asset {key}"
            return value
        if "Fn::Join" in value:
            return "".join(part(p) for p in value["Fn::Join"][1])
        if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
            return buckets.get(value["Fn::GetAtt"][0], value["Fn::GetAtt"][0])
        if value == {"Ref": "AWS::Partition"}:
            return ""
        raise AssertionError(value)

    reads: dict[str, set[tuple[str, str]]] = {}
    for policy in (r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            actions = [a for a in actions if a.startswith(("s3:Get", "s3:List"))]
            if not actions:
                continue
            targets = statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            names = [part(t).removeprefix("arn:") for t in targets]
            prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
            if prefixes:
                listed = ",".join(p.replace(artifact_key, "model artifact") for p in prefixes)
                names = [f"{name}?prefix={listed}" for name in names]
            for role in policy["Properties"]["Roles"]:
                named = role_names.get(role["Ref"], role["Ref"])
                reads.setdefault(named, set()).update((a, n) for a in actions for n in names)
    return reads


def test_the_checker_may_make_only_the_item_calls_it_makes(template):
    """lambdas/checker/adapters: GetItem of a bin, PutItem of a check; Powertools'
    idempotency layer: GetItem, PutItem, UpdateItem, DeleteItem. No Scan, Query or batch
    writes, and nothing on the checks table's index."""
    raw = template.to_json()
    resources, outputs = raw["Resources"], raw["Outputs"]
    [function] = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "checker.handler.lambda_handler"
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    tables = {
        outputs["BinsTable"]["Value"]["Ref"]: "bins",
        outputs["ChecksTable"]["Value"]["Ref"]: "checks",
    }
    granted: dict[str, set[str]] = {}
    for policy in (r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            if not any(a.startswith("dynamodb:") for a in actions):
                continue
            [table, attribute] = statement["Resource"]["Fn::GetAtt"]  # the table, no index
            assert attribute == "Arn"
            granted.setdefault(tables.get(table, "idempotency"), set()).update(actions)
    assert granted == {
        "bins": {"dynamodb:GetItem"},
        "checks": {"dynamodb:PutItem"},
        "idempotency": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
    }


def test_each_function_writes_only_to_its_own_log_group_kept_for_the_configured_time(
    synthesized, template
):
    """No AWSLambdaBasicExecutionRole (log actions on every group of the account): each
    function logs to a group of its own, kept ``log_retention_days`` (90 by default)."""
    raw = template.to_json()
    resources = raw["Resources"]
    functions = {
        logical: r["Properties"]
        for logical, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
        and not logical.startswith("BucketNotificationsHandler")  # CDK's own, see below
    }
    assert len(functions) == 5  # checker, validate, compare, review, review backlog
    for logical, function in functions.items():
        group = function["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] == 90
        role = function["Role"]["Fn::GetAtt"][0]
        assert "ManagedPolicyArns" not in resources[role]["Properties"], logical
        logs = [
            statement
            for policy in resources.values()
            if policy["Type"] == "AWS::IAM::Policy"
            and {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if any(a.startswith("logs:") for a in statement["Action"])
        ]
        assert logs == [
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [group, "Arn"]},
            }
        ], logical
    # Only CDK's bucket-notifications handler (a deployment-time function CDK gives no way
    # to configure) keeps the managed policy: the one IAM4 acknowledgment left.
    managed = [
        logical
        for logical, r in resources.items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("ManagedPolicyArns")
    ]
    assert [m.startswith("BucketNotificationsHandler") for m in managed] == [True]
    report = json.loads((Path(synthesized[0].directory) / "validation-report.json").read_text())
    [pack] = report["pluginReports"]
    iam4 = [v for v in pack["suppressedViolations"] if "IAM4" in v["ruleName"]]
    assert [c["constructPath"] for v in iam4 for c in v["violatingConstructs"]] == [
        "BinCheck/BucketNotificationsHandler050a0587b7544547bf325f094a3db834/Role/Resource"
    ]


def test_the_endpoints_log_group_is_declared_before_the_endpoint_and_expires(template):
    """SageMaker writes to /aws/sagemaker/Endpoints/<name>, and creates it if it is not
    there: the stack declares it first, with retention, and the role writes to it alone.
    (SageMaker's /aws/sagemaker/TrainingJobs is shared by every training job of the
    account: not declared, see docs/design.md.)"""
    raw = template.to_json()
    resources = raw["Resources"]
    [group] = [
        logical
        for logical, r in resources.items()
        if r["Type"] == "AWS::Logs::LogGroup"
        and r["Properties"].get("LogGroupName") == "/aws/sagemaker/Endpoints/bincheck-counter"
    ]
    assert resources[group]["Properties"]["RetentionInDays"] == 90
    [endpoint] = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    assert group in endpoint["DependsOn"]
    [model] = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Model"]
    role = model["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    logs = [
        statement
        for policy in resources.values()
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("logs:") for a in statement["Action"])
    ]
    assert [s["Resource"] for s in logs] == [{"Fn::GetAtt": [group, "Arn"]}]
    names = [
        r["Properties"].get("LogGroupName")
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    ]
    assert "/aws/sagemaker/TrainingJobs" not in names


def test_network_isolation_is_off_by_default_and_a_setting_turns_it_on(template, isolated):
    """An isolated model has no network: the checker sends photo bytes, the endpoint's role
    reads no photos, and every model the pipeline promotes is isolated as well."""

    def models(t: Template) -> list[Any]:
        return [
            m["Properties"].get("EnableNetworkIsolation")
            for m in t.find_resources("AWS::SageMaker::Model").values()
        ]

    def promoted_isolation(t: Template) -> str:
        [machine] = t.find_resources("AWS::StepFunctions::StateMachine").values()
        text = json.dumps(machine["Properties"]["DefinitionString"])
        return re.search(r'EnableNetworkIsolation\\":(\w+)', text)[1]

    assert models(template) == [False] and promoted_isolation(template) == "false"
    assert _s3_reads_by_role(template.to_json())["endpoint"] >= {
        ("s3:GetObject", "photos bucket/bins/*")
    }
    assembly, on = isolated
    assert models(on) == [True] and promoted_isolation(on) == "true"
    reads = _s3_reads_by_role(on.to_json())
    assert not [target for _, target in reads["endpoint"] if target.startswith("photos")]
    on.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "checker.handler.lambda_handler",
            "Environment": {"Variables": Match.object_like({"ENDPOINT_INPUT": "bytes"})},
        },
    )
    # The configured retention, on every log group the stack declares.
    groups = on.find_resources("AWS::Logs::LogGroup").values()
    # five functions, the endpoint, the state machine, the review API's access log
    assert len(groups) == 8
    assert {g["Properties"]["RetentionInDays"] for g in groups} == {365}
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    assert report["pluginReports"][0]["conclusion"] == "success"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"endpoint_network_isolation": True}, 'needs endpoint_input "bytes"'),
        ({"log_retention_days": 45}, "log_retention_days must be one of 1, 3, 5, 7, 14, 30"),
        ({"endpoint_name": "c" * 64}, "endpoint_name must be 1-63 letters, digits and hyphens"),
        ({"endpoint_name": "counter-"}, "endpoint_name must be 1-63 letters"),
    ],
)
def test_bad_endpoint_and_log_settings_are_refused_with_a_clear_message(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        BinCheckConfig(**settings)
    assert BinCheckConfig(endpoint_name="c" * 63).endpoint_name == "c" * 63


def test_the_stack_outputs_name_the_resources_operators_look_up(template):
    raw = template.to_json()
    resources, outputs = raw["Resources"], raw["Outputs"]
    assert set(outputs) == {
        "PhotosBucket",
        "BinsTable",
        "ChecksTable",
        "AlertsTopic",
        "OpsTopic",
        "PhotoEventsDLQ",
        "EndpointName",
        "TrainingPipeline",
        "TrainingBucket",
        "ProductionModelRecord",
        "ReviewApiUrl",
        "ReviewUserPoolId",
        "ReviewUserPoolClientId",
    }
    # Each a Ref (a bucket's or table's name, a topic's ARN, a queue's URL) to its resource.
    types = {
        "PhotosBucket": "AWS::S3::Bucket",
        "BinsTable": "AWS::DynamoDB::Table",
        "ChecksTable": "AWS::DynamoDB::Table",
        "AlertsTopic": "AWS::SNS::Topic",
        "OpsTopic": "AWS::SNS::Topic",
        "PhotoEventsDLQ": "AWS::SQS::Queue",
    }
    named = {name: resources[outputs[name]["Value"]["Ref"]] for name in types}
    assert {name: r["Type"] for name, r in named.items()} == types
    # And which of their kind each is.
    photos = named["PhotosBucket"]["Properties"]
    assert photos["LoggingConfiguration"]["LogFilePrefix"] == "photos/"
    keys = {
        name: [k["AttributeName"] for k in named[name]["Properties"]["KeySchema"]]
        for name in ("BinsTable", "ChecksTable")
    }
    assert keys == {"BinsTable": ["bin_id"], "ChecksTable": ["bin_id", "check_id"]}
    assert named["AlertsTopic"]["Properties"]["DisplayName"] == "Bin check alerts"
    assert named["OpsTopic"]["Properties"]["DisplayName"] == "Bin checker operations"
    [events] = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    ]
    dead_letters = events["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert outputs["PhotoEventsDLQ"]["Value"] == {"Ref": dead_letters}
    [endpoint] = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    assert outputs["EndpointName"]["Value"] == endpoint["Properties"]["EndpointName"]
    assert {
        name: resources[outputs[name]["Value"]["Ref"]]["Type"]
        for name in ("TrainingPipeline", "TrainingBucket", "ProductionModelRecord")
    } == {
        "TrainingPipeline": "AWS::StepFunctions::StateMachine",
        "TrainingBucket": "AWS::S3::Bucket",
        "ProductionModelRecord": "AWS::SSM::Parameter",
    }
    assert {
        name: resources[outputs[name]["Value"]["Ref"]]["Type"]
        for name in ("ReviewUserPoolId", "ReviewUserPoolClientId")
    } == {
        "ReviewUserPoolId": "AWS::Cognito::UserPool",
        "ReviewUserPoolClientId": "AWS::Cognito::UserPoolClient",
    }
    [api] = [logical for logical, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    url = outputs["ReviewApiUrl"]["Value"]["Fn::Join"][1]
    assert url[:2] == ["https://", {"Ref": api}] and url[-1] == "/"  # the $default stage


def test_the_training_pipeline_is_deployed_and_its_schedule_is_off_by_default(template):
    template.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    # The one rule: the review backlog's schedule (tests/test_review_infra.py), no training.
    [rule] = template.find_resources("AWS::Events::Rule").values()
    [target] = rule["Properties"]["Targets"]
    assert "StateMachine" not in json.dumps(target)


def test_the_final_training_job_is_not_profiled_by_default(synthesized, template):
    """SageMaker Debugger is closed to new customers: without ``training_profiler`` no
    profiler or rule in the request, no rule image, no grant or acknowledgment for them
    (tests/test_pipeline_infra.py has them with the setting on)."""
    [machine] = template.find_resources("AWS::StepFunctions::StateMachine").values()
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    # The final job is there, with train.py's speed figures among its metrics...
    assert "createTrainingJob" in definition and "samples_per_s=(" in definition
    # ... and no profiling.
    assert "ProfilerConfig" not in definition and "ProfilerRule" not in definition
    assert "ProfilerRuleImage" not in template.to_json().get("Mappings", {})
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert "/aws/sagemaker/TrainingJobs" in policies
    for grant in ("profiler/", "sagemaker-debugger-rules", "/aws/sagemaker/ProcessingJobs"):
        assert grant not in policies
    report = (Path(synthesized[0].directory) / "validation-report.json").read_text()
    assert "TrainingJobs" in report
    assert "profiler/" not in report and "ProcessingJobs" not in report


def test_cdk_nag_passes_with_every_acknowledgment_explained(synthesized):
    assembly, _ = synthesized
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    [pack] = report["pluginReports"]
    assert pack["pluginName"] == "AwsSolutions"
    assert pack["conclusion"] == "success"
    assert pack["violations"] == []
    acknowledged = pack["suppressedViolations"]
    assert acknowledged and all(len(v.get("reason", "")) > 30 for v in acknowledged)


def test_cdk_nag_fails_synthesis_on_an_unexplained_finding(model_artifact, tmp_path):
    app, stack = synth(tmp_path, model_artifact)
    role = iam.Role(stack, "Careless", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(RuntimeError) as failure:
        app.synth()
    assert "ValidationFailed" in str(failure.value)
    assert "BinCheck/Careless/DefaultPolicy" in str(failure.value)
    assert "AwsSolutions-IAM5[Action::s3:*]" in str(failure.value)


def test_cfn_lint_finds_no_errors(synthesized):
    assembly, _ = synthesized
    template_file = Path(assembly.directory) / "BinCheck.template.json"
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", str(template_file)], capture_output=True, text=True
    )
    # cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational.
    assert result.returncode & 2 == 0, result.stdout


def test_missing_model_artifact_and_unknown_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no model artifact at"):
        synth(tmp_path, tmp_path / "none.tar.gz")
    with pytest.raises(
        ValueError, match=r"unknown bincheck settings in cdk context: \['batchsize'\]"
    ):
        synth(tmp_path, tmp_path / "none.tar.gz", batchsize=5)


def test_an_artifact_packed_without_its_libraries_is_refused_with_the_repack_command(
    model_artifact, tmp_path
):
    import tarfile

    from infra.model_artifact import serving_files

    older = tmp_path / "older.tar.gz"  # as packed before timm travelled in lib/
    with tarfile.open(model_artifact) as source, tarfile.open(older, "w:gz") as target:
        for member in source.getmembers():
            if not member.name.startswith("lib/"):
                target.addfile(member, source.extractfile(member) if member.isfile() else None)

    assert any(name.startswith("lib/timm/") for name in serving_files(model_artifact))
    with pytest.raises(ValueError, match=r"carries no lib/ .* repack it first: .*repack\("):
        serving_files(older)


def test_the_local_stack_creates_the_tables_as_the_template_declares(template, resources):
    """The local stack (bincheck/local/resources.py) and the CDK app describe the same
    tables: keys, index and TTL."""
    import boto3

    from contract.names import ResourceNames

    def schema(key_schema) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in key_schema]

    declared = []
    for table in template.find_resources("AWS::DynamoDB::Table").values():
        properties = table["Properties"]
        declared.append(
            (
                schema(properties["KeySchema"]),
                sorted(
                    (index["IndexName"], tuple(schema(index["KeySchema"])))
                    for index in properties.get("GlobalSecondaryIndexes", [])
                ),
                properties.get("TimeToLiveSpecification", {}).get("AttributeName"),
            )
        )
    dynamodb = boto3.client("dynamodb")
    names = ResourceNames()
    local = []
    for name in (names.bins_table, names.checks_table, names.idempotency_table):
        table = dynamodb.describe_table(TableName=name)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        local.append(
            (
                schema(table["KeySchema"]),
                sorted(
                    (index["IndexName"], tuple(schema(index["KeySchema"])))
                    for index in table.get("GlobalSecondaryIndexes", [])
                ),
                ttl.get("AttributeName"),
            )
        )
    assert sorted(local, key=str) == sorted(declared, key=str)
