"""One run at a time: an execution that finds an earlier one of the same state machine still
running stops, before any job starts (validate) and again before it compares (compare).

Two runs that overlap can each compare their candidate with the same production model and
both promote, the second over the first's model without ever being compared with it. A
lock around compare, update and record would need a table and a way to clear a lock whose
execution was stopped; Step Functions already knows which executions are running, and the
earliest-started one goes on. Ties (the same millisecond) go to the lower execution ARN, so
two executions that see each other never both stop.

``ListExecutions`` is eventually consistent: two executions started moments apart may each
miss the other at validate. Hours later, at compare, they see each other, and the later one
stops there before it could promote (a redriven execution, which skips validate, too).

``check_first`` is pure; ``running_executions`` is the one ``ListExecutions`` call, made by
the validate and compare functions and by ``bincheck train start``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any


class RunInProgress(RuntimeError):
    """An earlier execution is still running: this one changes nothing."""


def started(moment: str) -> datetime:
    """``$$.Execution.StartTime`` (``2026-11-21T09:00:00.123Z``) as an aware datetime."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def running_executions(sfn: Any, state_machine: str) -> list[dict[str, Any]]:
    """The state machine's RUNNING executions (``ListExecutions`` entries, every page)."""
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine, statusFilter="RUNNING"
    )
    return [e for page in pages for e in page["executions"]]


def check_first(
    own_arn: str, own_start: datetime, running: Iterable[Mapping[str, Any]], *, note: str = ""
) -> None:
    """Raise ``RunInProgress`` naming every execution in ``running`` (``ListExecutions``
    entries: ``executionArn``, ``name``, ``startDate``) that started before this one, with
    ``note`` (what this stop leaves behind) in brackets at the end."""

    def order(execution: Mapping[str, Any]) -> tuple[datetime, str]:
        return execution["startDate"], execution["executionArn"]

    earlier = sorted((e for e in running if order(e) < (own_start, own_arn)), key=order)
    if earlier:
        raise RunInProgress(
            "one training run at a time, and "
            + "; ".join(map(_describe, earlier))
            + ": wait for it to end, or stop it, then start this run again"
            + (f" ({note})" if note else "")
        )


def _describe(execution: Mapping[str, Any]) -> str:
    moment = execution["startDate"].astimezone(UTC)
    return (
        f"execution {execution['name']} (started {moment:%Y-%m-%d %H:%M:%S} UTC) is still "
        f"running (aws stepfunctions stop-execution --execution-arn {execution['executionArn']})"
    )
