"""The training pipeline's promotion: the candidate's ``model.tar.gz`` is copied to
``promoted/<version>/`` (which no training job may write) and that copy becomes a model and
an endpoint configuration; the endpoint is updated blue/green with rollback on its alarms,
and only an update that ends in service on the new configuration is recorded as production,
the record naming the copy and its S3 object version.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk.aws_stepfunctions import Condition, JsonPath
from constructs import Construct

from . import access
from .states import Outcome, States

PROMOTED = "$.promoted"  # where the copy is: model_data, model_version_id, job_model_data


def promotion(
    scope: Construct,
    states: States,
    requests: dict[str, Any],
    record: ssm.IStringParameter,
    bucket: s3.IBucket,
    endpoint_name: str,
    endpoint_arn: str,
    promoted: sfn.IChainable,
) -> sfn.IChainable:
    record_state = states.catching(
        tasks.CallAwsService(
            scope,
            "Record production model",
            service="ssm",
            action="putParameter",
            iam_action="ssm:PutParameter",
            iam_resources=[record.parameter_arn],
            parameters={
                "Name": record.parameter_name,
                # The candidate's record, with the copy for model_data (and its version).
                "Value": JsonPath.json_to_string(
                    JsonPath.json_merge(
                        JsonPath.object_at("$.decision.candidate"), JsonPath.object_at(PROMOTED)
                    )
                ),
                "Overwrite": True,
            },
            result_path=JsonPath.DISCARD,
        )
    )
    status = "$.poll.EndpointStatus"
    in_service = Condition.string_equals(status, "InService")
    rolled_back = JsonPath.format(
        "endpoint {} rolled back to {}",
        JsonPath.string_at("$.poll.EndpointName"),
        JsonPath.string_at("$.poll.EndpointConfigName"),
    )
    describe = states.poll(
        "endpoint",
        states.sagemaker(
            "Describe endpoint",
            "describeEndpoint",
            "endpoint",
            {"EndpointName": endpoint_name},
            describe=True,
            resources=[endpoint_arn],
        ),
        status=status,
        name="$.poll.EndpointName",
        # In service again on the old configuration: SageMaker rolled the update back.
        done=Condition.and_(
            in_service,
            Condition.string_equals_json_path("$.poll.EndpointConfigName", "$.run.endpoint_config"),
        ),
        then=record_state.next(promoted),
        failed=("Failed", "UpdateRollbackFailed", "OutOfService"),
        error="EndpointUpdateFailed",
        outcomes=[
            Outcome(
                "Rolled back with a reason",
                Condition.and_(in_service, Condition.is_present("$.poll.FailureReason")),
                JsonPath.format("{}: {}", rolled_back, JsonPath.string_at("$.poll.FailureReason")),
            ),
            Outcome(
                "Rolled back",
                in_service,
                JsonPath.format("{}: an alarm fired while the new model baked", rolled_back),
            ),
        ],
    )
    create_model = states.sagemaker("Create model", "createModel", "model", requests["model"])
    create_config = states.sagemaker(
        "Create endpoint config",
        "createEndpointConfig",
        "endpoint-config",
        requests["endpoint_config"],
    )
    update = states.sagemaker(
        "Update endpoint",
        "updateEndpoint",
        "endpoint",
        requests["endpoint_update"],
        # UpdateEndpoint is authorised on the endpoint and on the configuration it gets.
        resources=[endpoint_arn, states.arn("endpoint-config")],
    )
    return (
        sfn.Chain.start(_copy(scope, states, bucket))
        .next(_copied(scope, bucket))
        .next(create_model)
        .next(create_config)
        .next(update)
        .next(describe)
    )


def _copy(scope: Construct, states: States, bucket: s3.IBucket) -> sfn.TaskStateBase:
    """CopyObject of the job's model.tar.gz (SageMaker's ``<output>/<job>/output/`` layout)
    to ``promoted/<version>/``: the state machine's role may read the one and write the
    other; its answer names the new object's version."""
    version = JsonPath.string_at("$.run.version")
    source = f"{bucket.bucket_name}/{access.JOBS}{{}}/{{}}/output/model.tar.gz"
    return states.catching(
        tasks.CallAwsService(
            scope,
            "Copy model for production",
            service="s3",
            action="copyObject",
            iam_action="s3:PutObject",
            iam_resources=[bucket.arn_for_objects(access.PROMOTED_MODELS)],
            additional_iam_statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[bucket.arn_for_objects(access.MODELS)]
                )
            ],
            parameters={
                "Bucket": bucket.bucket_name,
                "Key": JsonPath.format(access.PROMOTED_KEY, version),
                "CopySource": JsonPath.format(
                    source,
                    JsonPath.string_at("$.run.run_id"),
                    JsonPath.string_at("$.decision.candidate.job"),
                ),
            },
            result_selector={"version_id": JsonPath.string_at("$.VersionId")},
            result_path=PROMOTED,
        )
    )


def _copied(scope: Construct, bucket: s3.IBucket) -> sfn.Pass:
    """Where the copy is and which version it is, as the model and the record name it."""
    return sfn.Pass(
        scope,
        "Model for production",
        parameters={
            "model_data": JsonPath.format(
                f"s3://{bucket.bucket_name}/{access.PROMOTED_KEY}",
                JsonPath.string_at("$.run.version"),
            ),
            "model_version_id": JsonPath.string_at(f"{PROMOTED}.version_id"),
            "job_model_data": JsonPath.string_at("$.decision.candidate.model_data"),
        },
        result_path=PROMOTED,
    )
