"""The training pipeline's definition: validate, tune, train, evaluate, promote, notify.

SageMaker is driven through Step Functions' AWS SDK integration, each job created and then
described on a Wait/Choice loop, not through the ``.sync`` integrations: the same definition
runs on AWS and in moto's Step Functions engine, where the tests execute it.

    Validate input (no earlier run still running; read the production record)
      -> Training code -> Start tuning job
      -> (poll) -> Best trial -> Reuse the best trial? -> [Start final training job]
      -> (poll the candidate) -> Compare with production (the record as it is now)
      -> Better than production?
         no:  Notify not promoted
         yes: Copy model for production (promoted/<version>/) -> Model for production
              -> Create model -> Create endpoint config -> Update endpoint -> (poll)
              -> Record production model -> Notify promoted
    any error -> Notify failure -> Failed
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk.aws_stepfunctions import Condition, JsonPath
from constructs import Construct

from .promotion import promotion
from .states import Outcome, States


def build_flow(
    scope: Construct,
    *,
    states: States,
    requests: dict[str, dict[str, Any]],
    code: dict[str, str],
    validate: lambda_.IFunction,
    compare: lambda_.IFunction,
    record: ssm.IStringParameter,
    bucket: s3.IBucket,
    endpoint_name: str,
    endpoint_arn: str,
) -> sfn.IChainable:
    validate_state = states.catching(
        tasks.LambdaInvoke(
            scope,
            "Validate input",
            lambda_function=validate,
            payload=sfn.TaskInput.from_object(
                {
                    "input": JsonPath.entire_payload,
                    "execution": JsonPath.execution_name,
                    "execution_arn": JsonPath.execution_id,
                    "state_machine": JsonPath.state_machine_id,
                    "started_at": JsonPath.execution_start_time,
                }
            ),
            # The state becomes {"run": {...}, "production": "<the record>"}: the record as
            # the jobs that score its model found it (the comparison reads it again).
            payload_response_only=True,
        )
    )
    # The project's code as the CDK app uploaded it, named the way SageMaker's toolkit reads.
    code_state = sfn.Pass(
        scope, "Training code", result=sfn.Result.from_object(code), result_path="$.code"
    )
    tuning = _tuning(scope, states, requests)
    candidate = _candidate(scope, states, requests)
    compare_state = states.catching(
        tasks.LambdaInvoke(
            scope,
            "Compare with production",
            lambda_function=compare,
            payload=sfn.TaskInput.from_object(
                {
                    "run": JsonPath.object_at("$.run"),
                    "job": JsonPath.string_at("$.poll.TrainingJobName"),
                    "model_data": JsonPath.string_at("$.poll.ModelArtifacts.S3ModelArtifacts"),
                    "execution_arn": JsonPath.execution_id,
                    "state_machine": JsonPath.state_machine_id,
                    "started_at": JsonPath.execution_start_time,
                }
            ),
            payload_response_only=True,
            result_path="$.decision",
        )
    )
    figures = {
        "summary": JsonPath.string_at("$.decision.summary"),
        "candidate": JsonPath.object_at("$.decision.candidate"),
        "production": JsonPath.object_at("$.decision.production"),
    }
    # SNS subjects must be under 100 characters: the version is 28, and the endpoint's
    # name (up to 63) is in the message only.
    version = JsonPath.string_at("$.run.version")
    not_promoted = states.notice(
        "Notify not promoted",
        outcome="NOT_PROMOTED",
        subject=JsonPath.format("bincheck: model {} not promoted", version),
        message=figures,
        output="$.decision",  # the execution's output: both models' records and the verdict
    ).next(sfn.Succeed(scope, "Not promoted"))
    promoted = states.notice(
        "Notify promoted",
        outcome="PROMOTED",
        subject=JsonPath.format("bincheck: model {} promoted", version),
        message={
            **figures,
            "endpoint": endpoint_name,
            "endpoint_config": JsonPath.string_at("$.run.endpoint_config"),
            "promoted": JsonPath.object_at("$.promoted"),
        },
        output="$.decision",
    ).next(sfn.Succeed(scope, "Promoted"))
    promote = promotion(
        scope, states, requests, record, bucket, endpoint_name, endpoint_arn, promoted
    )

    tuning["done"].next(candidate["start"])
    candidate["done"].next(compare_state).next(
        sfn.Choice(scope, "Better than production?")
        .when(Condition.boolean_equals("$.decision.promote", True), promote)
        .otherwise(not_promoted)
    )
    return sfn.Chain.start(validate_state).next(code_state).next(tuning["start"])


def _tuning(scope: Construct, states: States, requests: dict[str, Any]) -> dict[str, Any]:
    best = sfn.Pass(
        scope,
        "Best trial",
        parameters={
            "job": JsonPath.string_at("$.poll.BestTrainingJob.TrainingJobName"),
            "hyperparameters": JsonPath.object_at("$.poll.BestTrainingJob.TunedHyperParameters"),
        },
        result_path="$.best",
    )
    status = "$.poll.HyperParameterTuningJobStatus"
    describe = states.poll(
        "tuning job",
        states.sagemaker(
            "Describe tuning job",
            "describeHyperParameterTuningJob",
            "hyper-parameter-tuning-job",
            {"HyperParameterTuningJobName": JsonPath.string_at("$.run.tuning_job")},
            describe=True,
        ),
        status=status,
        name="$.run.tuning_job",
        done=Condition.and_(
            Condition.string_equals(status, "Completed"),
            Condition.is_present("$.poll.BestTrainingJob"),
        ),
        then=best,
        failed=("Failed", "Stopped", "Stopping", "Deleting", "DeleteFailed"),
        error="TuningJobFailed",
        outcomes=[
            Outcome(
                "No trial succeeded",
                Condition.string_equals(status, "Completed"),
                JsonPath.format(
                    "tuning job {} completed without a successful trial",
                    JsonPath.string_at("$.run.tuning_job"),
                ),
            )
        ],
    )
    start = states.sagemaker(
        "Start tuning job",
        "createHyperParameterTuningJob",
        "hyper-parameter-tuning-job",
        requests["tuning"],
    )
    start.next(describe)
    return {"start": start, "done": best}


def _candidate(scope: Construct, states: States, requests: dict[str, Any]) -> dict[str, Any]:
    """The model to evaluate: a final training job's, or the best trial's as it is."""
    describe = states.sagemaker(
        "Describe candidate training job",
        "describeTrainingJob",
        "training-job",
        {"TrainingJobName": JsonPath.string_at("$.candidate.job")},
        describe=True,
    )
    done = sfn.Pass(scope, "Candidate trained")
    status = "$.poll.TrainingJobStatus"
    states.poll(
        "candidate training job",
        describe,
        status=status,
        name="$.candidate.job",
        done=Condition.string_equals(status, "Completed"),
        then=done,
        failed=("Failed", "Stopped", "Stopping"),
        error="TrainingJobFailed",
    )

    def named(id: str, job: str) -> sfn.Pass:
        return sfn.Pass(
            scope, id, parameters={"job": JsonPath.string_at(job)}, result_path="$.candidate"
        )

    start = (
        sfn.Choice(scope, "Reuse the best trial?")
        .when(
            Condition.boolean_equals("$.run.reuse_best_tuning_job", True),
            named("Candidate: the best trial", "$.best.job").next(describe),
        )
        .otherwise(
            named("Candidate: a final training job", "$.run.training_job")
            .next(
                states.sagemaker(
                    "Start final training job",
                    "createTrainingJob",
                    "training-job",
                    requests["training"],
                )
            )
            .next(describe)
        )
    )
    return {"start": start, "done": done}
