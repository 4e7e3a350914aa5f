"""Which fields of a Task's result the states of a state machine definition read (Amazon
States Language with JSONPath).

A Task's result lands where its ``ResultPath`` says (``$.poll``). Every state reached from
the Task, through Next, Default, Choices and Catch, until a state overwrites that place or
an ``OutputPath`` drops it, reads the result with each path of its that starts there:
in Parameters (intrinsic functions included), Choice rules, OutputPath, Wait and Fail
paths. A ``ResultSelector`` reads the result directly; what it makes is no longer the API's
response, so nothing after it is followed. ``InputPath`` is not followed: a definition
that uses it is refused rather than half-read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]

_PATH = re.compile(r"(?<![\w$])\$((?:\.[A-Za-z_][\w-]*|\[\d+\])*)")
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")
_SDK = re.compile(r"arn:[^:]+:states:::(?:aws-sdk:)?([a-z0-9-]+):([A-Za-z0-9]+)(?:\.\w+)?")
_LAMBDA = re.compile(r"arn:[^:]+:lambda:[^:]+:[^:]+:function:[^:]+")
_NO_RESULT_STATES = {"Choice", "Wait", "Succeed", "Fail"}
_PATH_FIELDS = ("ItemsPath", "SecondsPath", "TimestampPath", "ErrorPath", "CausePath")


@dataclass(frozen=True)
class Read:
    state: str  # the state that reads
    field: str  # where in it: Parameters.Payload.job, Choices, OutputPath
    path: Path  # within the task's result
    operator: str | None = None  # a Choice rule's comparison: StringEquals ...
    value: Any = None  # ... and the value it compares with


def definition_of(template: dict[str, Any]) -> dict[str, Any]:
    """The one state machine of a synthesized template, its references written as names
    (``_placeholder``); a Lambda function's ARN with its logical id as the name."""
    [machine] = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    text = machine["DefinitionString"]
    if isinstance(text, dict):
        separator, parts = text["Fn::Join"]
        text = separator.join(_placeholder(part, template) for part in parts)
    return json.loads(text)


def _placeholder(part: Any, template: dict[str, Any]) -> str:
    """``${AWS.Partition}``, ``${Bucket}``, ``${Role.Arn}`` (no colons: ARNs stay ARNs)."""
    if isinstance(part, str):
        return part
    (function, argument), *_ = part.items()
    if function == "Fn::GetAtt":
        logical, attribute = argument
        if template["Resources"][logical]["Type"] == "AWS::Lambda::Function":
            return f"arn:aws:lambda:${{AWS.Region}}:${{AWS.AccountId}}:function:{logical}"
        name = f"{logical}.{attribute}"
    else:
        name = argument if function == "Ref" else function
    return "${" + name.replace("::", ".") + "}"


def integration(state: dict[str, Any]) -> tuple[str, str] | None:
    """A Task's service and operation as botocore names them, None for other states."""
    if state["Type"] != "Task":
        return None
    resource = state["Resource"]
    if _LAMBDA.fullmatch(resource):
        return "lambda", "Invoke"
    match = _SDK.fullmatch(resource)
    if match is None:
        raise ValueError(f"not an integration this analysis knows: {resource}")
    service = {"sfn": "stepfunctions", "states": "stepfunctions"}.get(match[1], match[1])
    return service, match[2][:1].upper() + match[2][1:]


def api_results(definition: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The Tasks whose result is an API response (not a function's answer): name ->
    (service, operation)."""
    tasks = {name: integration(state) for name, state in definition["States"].items()}
    return {name: api for name, api in tasks.items() if api and api[0] != "lambda"}


def result_reads(definition: dict[str, Any], task: str) -> list[Read]:
    """Every read of ``task``'s result in the states that can see it."""
    states = definition["States"]
    _refuse_input_paths(states)
    state = states[task]
    if "ResultSelector" in state:
        return [
            Read(task, f"ResultSelector.{field}", path)
            for field, path in _paths(state["ResultSelector"], "")
        ]
    if "ResultPath" in state and state["ResultPath"] is None:
        return []
    place = _steps(state.get("ResultPath", "$"))
    reads: list[Read] = []
    place = _output(task, state, (place, ()), reads)
    queue = [(state["Next"], place)] if place is not None and "Next" in state else []
    seen: set[Any] = set()
    while queue:
        name, where = queue.pop()
        if (name, where) in seen:
            continue
        seen.add((name, where))
        state = states[name]
        reads.extend(_reads_in(name, state, where))
        for catch in state.get("Catch", []):
            after = _after_write(where, catch.get("ResultPath", "$"))
            if after is not None:
                queue.append((catch["Next"], after))
        after = _after_write(where, _written(state))
        after = _output(name, state, after, reads) if after is not None else None
        if after is not None:
            queue.extend((n, after) for n in _successors(state))
    return reads


def all_reads(definition: dict[str, Any]) -> Iterator[tuple[str, str, Path]]:
    """Every path every state reads from its input: (state, field, path from ``$``)."""
    for name, state in definition["States"].items():
        for read in _reads_in(name, state, ((), ())):
            yield read.state, read.field, read.path
        if state.get("OutputPath") not in (None, "$"):
            yield name, "OutputPath", _steps(state["OutputPath"])


Where = tuple[Path, Path]  # (where in the state data the result is, which part of it)


def _reads_in(name: str, state: dict[str, Any], where: Where) -> Iterator[Read]:
    for key in ("Parameters", *_PATH_FIELDS):
        if key not in state:
            continue
        literal = key != "Parameters"
        for field, path in _paths(state[key], "" if literal else key, literal=literal):
            inside = _within(path, where)
            if inside is not None:
                yield Read(name, field or key, inside)
    for rule in _rules(state.get("Choices", [])):
        for key, value in rule.items():
            if key == "Variable" or key.endswith("Path"):
                inside = _within(_steps(value), where)
                if inside is not None:
                    operator, operand = _comparison(rule)
                    yield Read(name, f"Choices.{key}", inside, operator, operand)


def _rules(rules: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for rule in rules:
        yield rule
        yield from _rules(rule.get("And", []) + rule.get("Or", []))
        if "Not" in rule:
            yield from _rules([rule["Not"]])


def _comparison(rule: dict[str, Any]) -> tuple[str | None, Any]:
    """A rule's operator and operand (a path, for the ``...Path`` operators)."""
    for key, value in rule.items():
        if key not in ("Variable", "Next"):
            return key, value
    return None, None


def _paths(value: Any, field: str, *, literal: bool = False) -> Iterator[tuple[str, Path]]:
    """The JSONPaths in a Parameters (or ResultSelector) template: values of ``key.$``
    fields, paths inside intrinsic functions; or ``value`` itself when ``literal``."""
    if literal and isinstance(value, str):
        yield field, _steps(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(".$") and isinstance(item, str):
                for match in _PATH.finditer(item):
                    yield f"{field}.{key[:-2]}".lstrip("."), _steps("$" + match[1])
            else:
                yield from _paths(item, f"{field}.{key}".lstrip("."))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, f"{field}[{index}]")


def _steps(path: str) -> Path:
    if not path.startswith("$") or path.startswith("$$"):
        raise ValueError(f"not a path into the state's data: {path!r}")
    steps: list[str | int] = []
    for name, index in _STEP.findall(path[1:]):
        steps.append(name or int(index))
    return tuple(steps)


def _within(path: Path, where: Where) -> Path | None:
    place, part = where
    if path[: len(place)] != place:
        return None
    return part + path[len(place) :]


def _written(state: dict[str, Any]) -> str | None:
    """Where a state writes on success (JSON null: nowhere)."""
    if state["Type"] in _NO_RESULT_STATES:
        return None
    if state["Type"] == "Pass" and "Result" not in state and "Parameters" not in state:
        return state.get("ResultPath")  # its input, copied there (or left as it is)
    return state.get("ResultPath", "$")


def _after_write(where: Where, written: str | None) -> Where | None:
    """None when the write replaces the result's place or a place around it."""
    if written is None:
        return where
    steps = _steps(written)
    return None if where[0][: len(steps)] == steps else where


def _output(name: str, state: dict[str, Any], where: Where, reads: list[Read]) -> Where | None:
    """After the state's OutputPath: where the result (or part of it) is, if anywhere."""
    output = state.get("OutputPath", "$")
    if output is None or state["Type"] == "Fail":
        return None if output is None else where
    steps, (place, part) = _steps(output), where
    if place[: len(steps)] == steps:  # the output holds the place
        return place[len(steps) :], part
    if steps[: len(place)] == place:  # the output is part of the result
        reads.append(Read(name, "OutputPath", part + steps[len(place) :]))
        return (), part + steps[len(place) :]
    return None


def _successors(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for rule in state.get("Choices", []):
        yield rule["Next"]


def _refuse_input_paths(states: dict[str, Any]) -> None:
    for name, state in states.items():
        if state.get("InputPath", "$") != "$":
            raise ValueError(f"{name} has an InputPath, which this analysis does not follow")
