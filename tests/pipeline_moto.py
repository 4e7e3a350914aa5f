"""The synthesized training pipeline, deployed into moto: enough of CloudFormation to run
the state machine's own definition in moto's Step Functions engine.

``MotoStack`` resolves the template's intrinsic functions, creating in moto each resource
the definition refers to, from the template's own properties: the two functions (their
handler and environment as synthesized), the training bucket, the ops topic, the
production record with its synthesized value, the roles. ``LambdaRuntime`` stands in for
Lambda's Python runtime: moto's Docker-free Lambda answers with canned payloads, so
invocations are routed to the handler the function names, run in-process with the
function's environment, an exception becoming Lambda's error payload. ``instant_waits``
makes Wait states return at once and records what they would have waited.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import time
import traceback
import zipfile
from typing import Any
from unittest import mock

import boto3
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)

ACCOUNT = "123456789012"  # moto's default account
MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


class MotoStack:
    def __init__(self, template: dict[str, Any], *, region: str, names: dict[str, str]) -> None:
        self.template = template
        self.region = region
        self.names = names  # logical id -> the physical name to give it
        self.deployed: dict[str, dict[str, str]] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                return self.deploy(argument[0])[argument[1]]
            if function == "Fn::Join":
                return argument[0].join(str(self.resolve(part)) for part in argument[1])
            if function == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.ref(m[1])), argument)
            if function == "Fn::FindInMap":
                mapping, first, second = (self.resolve(a) for a in argument)
                return self.template["Mappings"][mapping][first][second]
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> str:
        if name == "AWS::Region":
            return self.region
        if name in PSEUDO:
            return PSEUDO[name]
        return self.deploy(name)["Ref"]

    def deploy(self, logical_id: str) -> dict[str, str]:
        if logical_id not in self.deployed:
            resource = self.template["Resources"][logical_id]
            create = getattr(self, "_" + resource["Type"].replace("::", "_"), None)
            if create is None:
                raise KeyError(f"no stand-in for {resource['Type']} ({logical_id})")
            self.deployed[logical_id] = create(logical_id, resource.get("Properties", {}))
        return self.deployed[logical_id]

    def find(self, resource_type: str) -> list[str]:
        return [k for k, v in self.template["Resources"].items() if v["Type"] == resource_type]

    def _name(self, logical_id: str) -> str:
        return self.names.get(logical_id, logical_id)

    def _AWS_S3_Bucket(self, logical_id: str, props: dict) -> dict[str, str]:
        name = self._name(logical_id).lower()
        boto3.client("s3").create_bucket(Bucket=name)
        return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}

    def _AWS_SNS_Topic(self, logical_id: str, props: dict) -> dict[str, str]:
        arn = boto3.client("sns").create_topic(Name=self._name(logical_id))["TopicArn"]
        return {"Ref": arn, "TopicArn": arn}

    def _AWS_SSM_Parameter(self, logical_id: str, props: dict) -> dict[str, str]:
        name = props.get("Name") or self._name(logical_id)
        value = self.resolve(props["Value"])
        boto3.client("ssm").put_parameter(Name=name, Value=value, Type=props["Type"])
        return {"Ref": name}

    def _AWS_IAM_Role(self, logical_id: str, props: dict) -> dict[str, str]:
        role = boto3.client("iam").create_role(
            RoleName=self._name(logical_id),
            AssumeRolePolicyDocument=json.dumps(self.resolve(props["AssumeRolePolicyDocument"])),
        )["Role"]
        return {"Ref": role["RoleName"], "Arn": role["Arn"]}

    def _AWS_Lambda_Function(self, logical_id: str, props: dict) -> dict[str, str]:
        function = boto3.client("lambda").create_function(
            FunctionName=self._name(logical_id),
            Runtime=props["Runtime"],
            Role=self.resolve(props["Role"]),
            Handler=props["Handler"],
            Code={"ZipFile": _empty_zip()},  # the code that runs is the repository's
            Environment={"Variables": self.resolve(props["Environment"]["Variables"])},
            Timeout=props.get("Timeout", 3),
        )
        return {"Ref": function["FunctionName"], "Arn": function["FunctionArn"]}

    def _AWS_CloudWatch_Alarm(self, logical_id: str, props: dict) -> dict[str, str]:
        return {"Ref": self._name(logical_id)}  # an alarm's Ref is its name

    def _AWS_KMS_Key(self, logical_id: str, props: dict) -> dict[str, str]:
        key = f"{logical_id.lower()}-key"
        return {"Ref": key, "Arn": f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key}"}

    def _AWS_StepFunctions_StateMachine(self, logical_id: str, props: dict) -> dict[str, str]:
        arn = boto3.client("stepfunctions").create_state_machine(
            name=self._name(logical_id),
            definition=self.resolve(props["DefinitionString"]),
            roleArn=self.resolve(props["RoleArn"]),
        )["stateMachineArn"]
        return {"Ref": arn, "Arn": arn}


class LambdaRuntime:
    """Runs the handler a moto Lambda function names (``retraining.handlers.validate`` is
    ``lambdas.retraining.handlers.validate`` here) with the function's environment."""

    def __init__(self) -> None:
        self.invocations: list[tuple[str, dict[str, Any]]] = []

    def install(self, monkeypatch: Any) -> None:
        runtime = self

        def invoke(self, function_name, qualifier, body, headers, response_headers):
            function = self.get_function(function_name, qualifier)
            return runtime.run(function.handler, function.environment_vars, body, response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

    def run(self, handler: str, environment: dict, body: Any, response_headers: dict) -> bytes:
        module, name = handler.rsplit(".", 1)
        function = getattr(importlib.import_module(f"lambdas.{module}"), name)
        event = json.loads(body or "{}")
        self.invocations.append((handler, event))
        with mock.patch.dict(os.environ, environment):
            try:
                result = function(event, None)
            except Exception as error:  # what Lambda's Python runtime answers
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "stackTrace": traceback.format_tb(error.__traceback__),
                    }
                ).encode()
        return json.dumps(result).encode()


def instant_waits(monkeypatch: Any) -> list[int]:
    """Wait states return at once; the list collects the seconds each would have waited."""
    waited: list[int] = []

    def wait(self, env, wait_seconds):
        waited.append(wait_seconds)

    monkeypatch.setattr(WaitFunction, "_wait_interval", wait)
    return waited


def run_execution(
    state_machine_arn: str, payload: dict, *, name: str = "run-1", timeout_s: float = 120
) -> dict:
    """Starts an execution and returns its description and history once it has ended.

    Named, because moto leaves an unnamed execution's name (``$$.Execution.Name``) null
    where AWS makes one up. An execution takes seconds; ``timeout_s`` allows for a machine
    busy with other work."""
    sfn = boto3.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
    )["executionArn"]
    deadline = time.monotonic() + timeout_s
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            last = [e["type"] for e in events[-5:]]
            raise TimeoutError(f"execution still running after {timeout_s} s; last {last}")
        time.sleep(0.02)
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return {**execution, "events": events}


def entered_states(execution: dict) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in execution["events"]
        if "stateEnteredEventDetails" in event
    ]


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "the code that runs is the repository's lambdas/")
    return buffer.getvalue()
