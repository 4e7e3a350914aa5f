"""The requests moto's Step Functions engine sends for a state machine's Task states, as
botocore was about to send them.

The engine creates its clients with ``parameter_validation=False``: nothing checks these
requests against the API models until a test does (``api_models``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_aws_sdk,
    state_task_service_sns,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (
    StateTaskLambda,
)


@dataclass(frozen=True)
class SdkCall:
    """A request as the engine's client was about to send it."""

    state: str  # the Task state that made it
    service: str  # botocore's name: sagemaker, sns, ssm, lambda
    operation: str  # the API's: CreateTrainingJob
    params: dict[str, Any]


# The integrations the training pipeline uses: the AWS SDK one (SageMaker, SSM, S3), SNS's
# optimised one, and Lambda's; each module creates its clients with boto_client_for.
_ENGINE_CLIENTS = (state_task_service_aws_sdk, state_task_service_sns, lambda_eval_utils)


def record_sdk_calls(monkeypatch: Any) -> list[SdkCall]:
    """Every request the engine sends for a Task state from now on, in the order sent.

    Recorded from botocore's ``before-parameter-build`` event on the engine's clients only
    (not on the functions' own clients, which validate); the state is the one whose task
    the engine's thread is running (each task runs in a thread of its own)."""
    calls: list[SdkCall] = []
    running = threading.local()

    def in_state(evaluate: Callable[..., None]) -> Callable[..., None]:
        def evaluate_recording_the_state(self: Any, env: Any) -> None:
            running.state = self.name
            try:
                evaluate(self, env)
            finally:
                running.state = None

        return evaluate_recording_the_state

    def record(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        calls.append(
            SdkCall(
                state=getattr(running, "state", None) or "(no task state)",
                service=model.service_model.service_name,
                operation=model.name,
                params=copy.deepcopy(params),
            )
        )

    def recording(client_for: Callable[..., Any]) -> Callable[..., Any]:
        def client(*args: Any, **kwargs: Any) -> Any:
            created = client_for(*args, **kwargs)
            created.meta.events.register("before-parameter-build", record)
            return created

        return client

    for task in (state_task_service.StateTaskService, StateTaskLambda):
        monkeypatch.setattr(task, "_eval_execution", in_state(task._eval_execution))
    for module in _ENGINE_CLIENTS:
        monkeypatch.setattr(module, "boto_client_for", recording(module.boto_client_for))
    return calls
