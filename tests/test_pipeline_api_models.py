"""The training pipeline's state machine judged by the AWS API models botocore ships.

moto's Step Functions engine sends its requests with botocore's parameter validation off,
and moto's services take much that AWS would refuse. So the executions of
``test_pipeline_execution`` run again here, each request the engine sends for a Task
recorded (``engine_calls``) and judged by the models: required members,
types, enums, lengths, ranges, patterns (``api_models.request_problems``). One more run
asks for every limit of a request at once. The definition itself is read for the fields of
responses it uses (``state_reads``): each must be in its operation's output, and each
status a Choice compares must be one the status's enum has.
"""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

import boto3
import pytest

from lambdas.retraining.fields import (
    ADDED_BY_TUNING,
    API_HYPERPARAMETERS,
    MAX_EXTRA_DATA,
    MAX_HYPERPARAMETER_BYTES,
    MAX_HYPERPARAMETER_VALUE,
    MAX_HYPERPARAMETERS,
    MAX_S3_URI,
)

from . import test_pipeline_execution as executions
from .api_models import DOCUMENTED, NUMBERS, operation, output_shape, request_problems
from .engine_calls import SdkCall, record_sdk_calls
from .pipeline_synth import BUCKET, pipeline_stack
from .state_reads import Read, all_reads, api_results, definition_of, integration, result_reads

pipeline = executions.pipeline  # the fixture: the synthesized pipeline deployed in moto
EXECUTIONS = {
    name: test
    for name, test in vars(executions).items()
    if name.startswith("test_") and inspect.isfunction(test)
}
AT_THE_LIMITS = "a request at every limit"
# What each run called: (state, service, operation), for the coverage check at the end.
CALLED: dict[str, set[tuple[str, str, str]]] = {}
STATUS_SHAPES = {"TrainingJobStatus", "HyperParameterTuningJobStatus", "EndpointStatus"}


def _judged(calls: list[SdkCall]) -> list[str]:
    return [
        f"{call.state}: {problem}"
        for call in calls
        for problem in request_problems(call.service, call.operation, call.params)
    ]


@pytest.mark.parametrize("execution", sorted(EXECUTIONS))
def test_every_request_an_execution_sends_is_one_the_api_accepts(
    execution: str, pipeline, monkeypatch
):
    calls = record_sdk_calls(monkeypatch)
    test = EXECUTIONS[execution]
    fixtures = {"pipeline": pipeline, "monkeypatch": monkeypatch}

    test(**{name: fixtures[name] for name in inspect.signature(test).parameters})

    assert calls, "the execution sent nothing"
    problems = _judged(calls)
    assert not problems, "\n".join(problems)
    CALLED[execution] = {(c.state, c.service, c.operation) for c in calls}


def test_a_request_at_every_limit_runs_and_every_request_it_sends_is_accepted(
    pipeline, monkeypatch
):
    calls = record_sdk_calls(monkeypatch)
    s3 = boto3.client("s3")
    folders = [_longest_folder(str(i)) for i in range(1 + MAX_EXTRA_DATA)]
    for folder in folders:
        key = folder.removeprefix(f"s3://{BUCKET}/") + "labels.csv"
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"image_id,count\n")
    hyperparameters = _most_hyperparameters()

    execution = pipeline.run(
        {
            "data": folders[0],
            "extra_data": folders[1:],
            "hyperparameters": hyperparameters,
            "instance_type": "ml.p6e-gb200.36xlarge",  # the longest type
        }
    )

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    problems = _judged(calls)
    assert not problems, "\n".join(problems)
    [final] = [c.params for c in calls if c.operation == "CreateTrainingJob"]
    # The pipeline's own and the request's: all SageMaker takes, but the one a tuning job
    # adds to its trials.
    assert len(final["HyperParameters"]) == API_HYPERPARAMETERS - len(ADDED_BY_TUNING)
    largest = max(len(json.dumps(_output(e)).encode()) for e in execution["events"])
    assert largest < 256 * 1024  # Step Functions' limit on a state (moto enforces it too)
    CALLED[AT_THE_LIMITS] = {(c.state, c.service, c.operation) for c in calls}


def _longest_folder(name: str) -> str:
    start = f"s3://{BUCKET}/data/{name}-"
    return start + "x" * (MAX_S3_URI - len(start) - 1) + "/"


def _most_hyperparameters() -> dict[str, str]:
    """As many as a request may name, the longest values first, within the JSON budget."""
    names = [f"option-{i:02d}" for i in range(MAX_HYPERPARAMETERS)]
    per_entry = len(json.dumps({"option-00": ""})) + 1  # quotes, colon, separator
    budget = MAX_HYPERPARAMETER_BYTES - len(names) * per_entry
    values = {}
    for name in names:
        length = max(1, min(MAX_HYPERPARAMETER_VALUE, budget))
        values[name] = "v" * length
        budget -= length - 1
    assert len(json.dumps(values).encode()) <= MAX_HYPERPARAMETER_BYTES
    return values


def _output(event: dict[str, Any]) -> Any:
    details = event.get("stateExitedEventDetails", {})
    return json.loads(details["output"]) if "output" in details else None


def test_every_task_state_sent_its_request_in_the_runs_above():
    """Every Task of the definition made a call in one of the runs (so every kind of
    request was judged), and made the call its Resource names."""
    runs = {*EXECUTIONS, AT_THE_LIMITS}
    if set(CALLED) != runs:
        pytest.skip("judges the runs of this module: run it whole")
    definition = definition_of(pipeline_stack().raw)
    tasks = {
        (name, *api)
        for name, state in definition["States"].items()
        if (api := integration(state)) is not None
    }

    assert set().union(*CALLED.values()) == tasks


def _output_problems(definition: dict[str, Any]) -> list[str]:
    problems = []
    for task, (service, name) in api_results(definition).items():
        for read in result_reads(definition, task):
            found = output_shape(service, name, read.path)
            if isinstance(found, str):
                problems.append(f"{read.state} ({read.field}) reads {task}'s result: {found}")
            else:
                problems.extend(_comparison_problems(task, read, found))
    return sorted(set(problems))


def _comparison_problems(task: str, read: Read, shape: Any) -> list[str]:
    """A Choice rule on a response field: an operator for its type, a value its enum has."""
    if read.operator is None or read.operator.startswith("Is"):
        return []
    kinds = {"String": ("string",), "Numeric": NUMBERS, "Boolean": ("boolean",)}
    kinds["Timestamp"] = ("timestamp",)
    family = next(f for f in kinds if read.operator.startswith(f))
    where = f"{read.state} compares {task}'s {'.'.join(map(str, read.path))}"
    if shape.type_name not in kinds[family]:
        return [f"{where} with {read.operator}, but it is a {shape.type_name}"]
    if read.operator == "StringEquals" and shape.enum and read.value not in shape.enum:
        return [f"{where} with {read.value!r}, not one of {shape.name}'s {shape.enum}"]
    return []


def test_every_response_field_the_definition_reads_is_in_the_operations_output():
    definition = definition_of(pipeline_stack().raw)

    assert _output_problems(definition) == []
    # Every read of $.poll is of a response the analysis followed to the reading state.
    followed = {
        (read.state, read.field)
        for task in api_results(definition)
        for read in result_reads(definition, task)
    }
    polled = {
        (state, field) for state, field, path in all_reads(definition) if path[:1] == ("poll",)
    }
    assert polled and polled <= followed
    compared = {
        output_shape(service, name, read.path).name
        for task, (service, name) in api_results(definition).items()
        for read in result_reads(definition, task)
        if read.operator == "StringEquals"
    }
    assert compared == STATUS_SHAPES  # the three polls' statuses, each against its enum


def test_the_checks_name_what_aws_would_refuse():
    """The checks are not vacuous: a broken request and a misread definition are named."""
    request = {
        "TrainingJobName": "bincheck_run",  # underscore: the pattern refuses it
        # no RoleArn: required
        "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/jobs/"},
        "ResourceConfig": {"InstanceType": "ml.t2.medium", "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {f"h{i}": "v" for i in range(101)} | {"long": "v" * 2501},
    }
    problems = "\n".join(request_problems("sagemaker", "CreateTrainingJob", request))
    for expected in (
        'Missing required parameter in input: "RoleArn"',
        "ResourceConfig.InstanceType 'ml.t2.medium' is not one of TrainingInstanceType's",
        "TrainingJobName 'bincheck_run' does not match TrainingJobName's pattern",
        "HyperParameters has 102 entries, more than 100",
        "HyperParameters.long has 2501 characters, more than 2500",
    ):
        assert expected in problems, (expected, problems)
    subject = "bincheck: model counter-20261121-090000-3f2a promoted to " + "e" * 43
    [refused] = request_problems("sns", "Publish", {"Message": "{}", "Subject": subject})
    assert "breaks the documented limit" in refused

    definition = copy.deepcopy(definition_of(pipeline_stack().raw))
    choice = definition["States"]["Is the candidate training job done?"]
    choice["Choices"][0]["StringEquals"] = "Complete"
    compare = definition["States"]["Compare with production"]["Parameters"]
    compare["model_data.$"] = "$.poll.ModelArtifacts.S3ModelArtifact"
    misread = "\n".join(_output_problems(definition))
    assert "with 'Complete', not one of TrainingJobStatus's" in misread, misread
    assert "has no member 'S3ModelArtifact'" in misread, misread


def test_the_documented_limits_are_what_the_api_documentation_still_says():
    for (service, name, member), limit in DOCUMENTED.items():
        documentation = operation(service, name).input_shape.members[member].documentation
        assert limit.sentence in documentation
