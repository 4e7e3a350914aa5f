"""The kinds of state the training pipeline is made of: a caught task, a SageMaker call, a
polling loop, a failure, an ops notice. ``infra/pipeline/flow.py`` strings them together.

Every task catches every error into the one failure notice. A polling loop's status check
sends a failed job there too; a state that reads a field SageMaker only sometimes returns
(``FailureReason``) is reached only after a Choice has checked that the field is present,
so that no state can fail where no catch sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk.aws_stepfunctions import Condition, JsonPath
from constructs import Construct

from lambdas.retraining.plan import NAME_PREFIX

SAGEMAKER = "sagemaker"
OWN = f"{NAME_PREFIX}*"  # every job, model and endpoint config the pipeline creates
FAILURE_REASON = "$.poll.FailureReason"


@dataclass(frozen=True)
class Outcome:
    """A final status of a polled resource that is a failure, with its own explanation."""

    id: str
    when: Condition
    cause: str  # a States.Format expression (JsonPath.format)


class States:
    def __init__(self, scope: Construct, *, ops: sns.ITopic, poll_s: dict[str, int]) -> None:
        self.scope = scope
        self.ops = ops
        self.poll_s = poll_s
        failed = sfn.Fail(scope, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")
        self.notify_failure = self.notice(
            "Notify failure",
            outcome="FAILED",
            subject="bincheck training pipeline failed",
            message={"error": JsonPath.object_at("$.error")},
        )
        # Even a notice that cannot be sent ends the execution as failed, with its cause.
        self.notify_failure.add_catch(failed, result_path="$.notice_error")
        self.notify_failure.next(failed)

    def catching(self, task: sfn.TaskStateBase) -> sfn.TaskStateBase:
        task.add_catch(self.notify_failure, result_path="$.error")
        return task

    def arn(self, resource: str, name: str = OWN) -> str:
        return Stack.of(self.scope).format_arn(
            service=SAGEMAKER, resource=resource, resource_name=name
        )

    def sagemaker(
        self,
        id: str,
        action: str,
        resource: str,
        parameters: dict,
        *,
        describe: bool = False,
        resources: Sequence[str] | None = None,
    ) -> tasks.CallAwsService:
        """One SageMaker API call, allowed on the pipeline's own resources only (or on
        ``resources``). A describe call changes nothing, so it is retried; its answer goes
        to ``$.poll``."""
        task = tasks.CallAwsService(
            self.scope,
            id,
            service=SAGEMAKER,
            action=action,
            iam_action=f"{SAGEMAKER}:{action[0].upper()}{action[1:]}",
            iam_resources=list(resources or [self.arn(resource)]),
            parameters=parameters,
            result_path="$.poll" if describe else JsonPath.DISCARD,
        )
        if describe:
            task.add_retry(
                errors=["States.ALL"],
                interval=Duration.seconds(10),
                max_attempts=3,
                backoff_rate=2,
            )
        self.catching(task)
        return task

    def poll(
        self,
        what: str,
        describe: tasks.CallAwsService,
        *,
        status: str,
        name: str,
        done: Condition,
        then: sfn.IChainable,
        failed: Sequence[str],
        error: str,
        outcomes: Sequence[Outcome] = (),
    ) -> tasks.CallAwsService:
        """``describe`` -> ``done``: ``then``; one of ``outcomes`` or a final status in
        ``failed``: the failure notice, with SageMaker's reason when it gave one; otherwise
        wait and describe again. Returns ``describe``, the loop's entry."""
        wait = sfn.Wait(
            self.scope,
            f"Wait for the {what}",
            time=sfn.WaitTime.duration(Duration.seconds(self.poll_s[what])),
        )
        wait.next(describe)
        ended = Condition.or_(*(Condition.string_equals(status, value) for value in failed))
        choice = sfn.Choice(self.scope, f"Is the {what} done?").when(done, then)
        for outcome in outcomes:
            choice.when(outcome.when, self.failure(outcome.id, error, outcome.cause))
        label = f"{what} {{}} ended {{}}"
        choice.when(
            Condition.and_(ended, Condition.is_present(FAILURE_REASON)),
            self.failure(
                f"The {what} failed",
                error,
                JsonPath.format(
                    label + ": {}",
                    JsonPath.string_at(name),
                    JsonPath.string_at(status),
                    JsonPath.string_at(FAILURE_REASON),
                ),
            ),
        )
        choice.when(
            ended,
            self.failure(
                f"The {what} ended",
                error,
                JsonPath.format(label, JsonPath.string_at(name), JsonPath.string_at(status)),
            ),
        )
        choice.otherwise(wait)
        describe.next(choice)
        return describe

    def failure(self, id: str, error: str, cause: str) -> sfn.Pass:
        """Leaves the same ``{"Error", "Cause"}`` at ``$.error`` as a catch does."""
        failure = sfn.Pass(
            self.scope, id, parameters={"Error": error, "Cause": cause}, result_path="$.error"
        )
        failure.next(self.notify_failure)
        return failure

    def notice(
        self, id: str, *, outcome: str, subject: str, message: dict, output: str = "$"
    ) -> tasks.SnsPublish:
        """An ops notice: JSON with the outcome and the execution; ``outcome`` is also a
        message attribute, for subscription filters. ``output``: what the state passes on
        (the execution's output, for the last notice)."""
        notice = tasks.SnsPublish(
            self.scope,
            id,
            topic=self.ops,
            subject=subject,
            message=sfn.TaskInput.from_object(
                {"outcome": outcome, "execution": JsonPath.execution_id, **message}
            ),
            message_attributes={"outcome": tasks.MessageAttribute(value=outcome)},
            result_path=JsonPath.DISCARD,
            output_path=output,
        )
        if outcome != "FAILED":
            self.catching(notice)
        return notice
