"""The training pipeline's promotion: the candidate becomes a model and an endpoint
configuration, the endpoint is updated blue/green with rollback on its alarms, and only an
update that ends in service on the new configuration is recorded as production.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk.aws_stepfunctions import Condition, JsonPath
from constructs import Construct

from .states import Outcome, States


def promotion(
    scope: Construct,
    states: States,
    requests: dict[str, Any],
    record: ssm.IStringParameter,
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
                "Value": JsonPath.string_at("$.decision.record"),
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
    return sfn.Chain.start(create_model).next(create_config).next(update).next(describe)
