"""Requests and responses judged by the AWS API models that botocore ships.

``request_problems`` says what AWS would refuse in a request before doing anything with it.
botocore's ``ParamValidator`` checks required members, types, unknown members and minimums;
the models also state enums, maximums and patterns, which it leaves to the service: those
are checked here by walking the input shape. A pattern must match the whole value, as AWS
applies it (a job name with an underscore is refused, though its pattern has no ``$``). A
few limits are stated only in an operation's documentation (``DOCUMENTED``).

``output_shape`` finds the shape of a field of an operation's response, or says which step
of the path the output does not have.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

NUMBERS = ("integer", "long", "float", "double")


@dataclass(frozen=True)
class Documented:
    """A limit on a top-level request member that the API states in its documentation only."""

    sentence: str  # as the member's documentation in the model says it
    holds: Callable[[str], bool]


def _no_control_characters(text: str) -> bool:
    return not any(unicodedata.category(c) == "Cc" for c in text)


DOCUMENTED = {
    ("sns", "Publish", "Subject"): Documented(
        "Subjects must be UTF-8 text with no line breaks or control characters, and less "
        "than 100 characters long.",
        lambda subject: len(subject) < 100 and _no_control_characters(subject),
    ),
}


@functools.cache
def operation(service: str, name: str) -> OperationModel:
    return _session().get_service_model(service).operation_model(name)


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def request_problems(service: str, name: str, params: Mapping[str, Any]) -> list[str]:
    """What AWS would refuse in ``params``, one line each; empty when nothing."""
    shape = operation(service, name).input_shape
    report = ParamValidator().validate(params, shape)
    problems = report.generate_report().splitlines() if report.has_errors() else []
    problems.extend(_beyond_the_validator(params, shape, ""))
    for (documented_service, documented_name, member), limit in DOCUMENTED.items():
        value = params.get(member)
        ours = (documented_service, documented_name) == (service, name)
        if ours and isinstance(value, str) and not limit.holds(value):
            problems.append(f"{member} {value!r} breaks the documented limit: {limit.sentence}")
    return [f"{service} {name}: {problem}" for problem in problems]


def _beyond_the_validator(value: Any, shape: Shape, name: str) -> Iterator[str]:
    """Enums, maximums, patterns, and the sizes of maps, which ParamValidator leaves out."""
    kind, limits = shape.type_name, shape.metadata
    if kind == "structure" and isinstance(value, Mapping):
        for member, member_value in value.items():
            if member in shape.members:
                yield from _beyond_the_validator(
                    member_value, shape.members[member], _join(name, member)
                )
    elif kind == "list" and isinstance(value, list):
        yield from _at_most(len(value), limits, name, "items")
        for index, item in enumerate(value):
            yield from _beyond_the_validator(item, shape.member, f"{name}[{index}]")
    elif kind == "map" and isinstance(value, Mapping):
        if len(value) < limits.get("min", 0):
            yield f"{name} has {len(value)} entries, fewer than {limits['min']}"
        yield from _at_most(len(value), limits, name, "entries")
        for key, item in value.items():
            yield from _beyond_the_validator(key, shape.key, f"{name} key {key!r}")
            yield from _beyond_the_validator(item, shape.value, _join(name, str(key)))
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            choices = ", ".join(shape.enum) if len(shape.enum) <= 12 else f"{len(shape.enum)}"
            yield f"{name} {value!r} is not one of {shape.name}'s values ({choices})"
        yield from _at_most(len(value), limits, name, "characters")
        pattern = limits.get("pattern")
        if pattern is not None and not _compiled(shape.name, pattern).fullmatch(value):
            yield f"{name} {_short(value)} does not match {shape.name}'s pattern {pattern}"
    elif kind in NUMBERS and _is_number(value) and value > limits.get("max", value):
        yield f"{name} {value} is more than {shape.name}'s maximum {limits['max']}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at_most(size: int, limits: Mapping[str, Any], name: str, unit: str) -> Iterator[str]:
    if "max" in limits and size > limits["max"]:
        yield f"{name} has {size} {unit}, more than {limits['max']}"


@functools.cache
def _compiled(shape: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:  # Java-only syntax such as \p{L}: this check needs a port
        raise ValueError(f"{shape}'s pattern {pattern!r} is not Python's syntax: {error}") from None


def _join(name: str, member: str) -> str:
    return f"{name}.{member}" if name else member


def _short(value: str) -> str:
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}... ({len(value)} characters)"


def output_shape(service: str, name: str, path: Sequence[str | int]) -> Shape | str:
    """The shape of the field at ``path`` in the operation's response, or why there is none.

    A member may be named as the model spells it or with a capital first letter, as Step
    Functions' AWS SDK integrations return them."""
    shape = operation(service, name).output_shape
    walked = f"{service} {name}'s output"
    if shape is None:
        return f"{walked} is empty"
    for step in path:
        if shape.type_name == "structure" and isinstance(step, str):
            members = {m[:1].upper() + m[1:]: s for m, s in shape.members.items()}
            found = shape.members.get(step) or members.get(step)
            if found is None:
                return f"{walked} has no member {step!r} (it has {', '.join(shape.members)})"
            shape = found
        elif shape.type_name == "list" and isinstance(step, int):
            shape = shape.member
        elif shape.type_name == "map" and isinstance(step, str):
            shape = shape.value
        else:
            return f"{walked} is a {shape.type_name} ({shape.name}), not indexed by {step!r}"
        walked = f"{walked}.{step}"
    return shape
