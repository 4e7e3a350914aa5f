"""The pipeline's two Lambda handlers: thin wiring of the pure request, plan and decision
code to S3 and to the production record (SSM). An exception is the state's error (its
class name is the error name the state machine's catch sees, its message the cause), so
nothing here is swallowed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from .decision import decide, production_model, read_record
from .plan import plan, run_id
from .request import InvalidRequest, parse_request
from .runs import check_first, running_executions, started
from .storage import TrainingStorage

logger = logging.getLogger()
logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class Settings:
    bucket: str  # the training bucket: data/, jobs/, checkpoints/
    defaults: dict[str, Any]  # the deployment's defaults for every run request
    timeout_s: int | None  # the state machine's limit, which a run's budget must fit
    record_name: str  # the SSM parameter holding the production model's record

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        bucket = _required(env, "TRAINING_BUCKET")
        defaults = json.loads(env.get("PIPELINE_DEFAULTS") or "{}")
        if not isinstance(defaults, dict):
            raise RuntimeError(f"PIPELINE_DEFAULTS must be a JSON object, got {defaults!r}")
        timeout = env.get("PIPELINE_TIMEOUT_S", "").strip()
        return cls(
            bucket=bucket,
            defaults=defaults,
            timeout_s=int(timeout) if timeout else None,
            record_name=_required(env, "PRODUCTION_RECORD"),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} is required")
    return value


def _record_text(settings: Settings) -> str:
    return boto3.client("ssm").get_parameter(Name=settings.record_name)["Parameter"]["Value"]


def _check_no_earlier_run(event: Mapping[str, Any], note: str = "") -> None:
    """``RunInProgress`` (with ``note``) if an execution that started before this one is
    still running."""
    own = event["execution_arn"]
    running = running_executions(boto3.client("stepfunctions"), event["state_machine"])
    # Its own entry's start time, as the others' were read; the context's if not listed yet.
    mine = [e["startDate"] for e in running if e["executionArn"] == own]
    check_first(own, mine[0] if mine else started(event["started_at"]), running, note=note)


def validate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"input", "execution", "execution_arn", "state_machine", "started_at"}`` ->
    ``{"run": plan, "production": record}`` (the record as stored now: the jobs score its
    model), or ``InvalidRequest``/``RunInProgress``/``RecordError``."""
    settings = Settings.from_env()
    request = parse_request(
        event.get("input"),
        defaults=settings.defaults,
        bucket=settings.bucket,
        timeout_s=settings.timeout_s,
    )
    missing = TrainingStorage(boto3.client("s3")).missing(request.label_uris)
    if missing:
        raise InvalidRequest(
            [f"no data folder at {uri.rsplit('/', 1)[0]}/ (no labels.csv)" for uri in missing]
        )
    _check_no_earlier_run(event)
    text = _record_text(settings)
    model = production_model(
        read_record(text, source=settings.record_name), source=settings.record_name
    )
    run = run_id(event["execution"], event["started_at"])
    logger.info("run %s: %s, against %s", run, request, model)
    return {
        "run": plan(request, bucket=settings.bucket, run=run, production_model=model),
        "production": text,
    }


def compare(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"run", "job", "model_data", "execution_arn", "state_machine", "started_at"}`` -> the
    decision, both records, and the candidate's record as the text to store if it is
    promoted; or ``RunInProgress``.

    One run at a time is checked again here, hours after ``validate``: ``ListExecutions``
    is eventually consistent, so two runs started moments apart may each have missed the
    other then, and a redriven execution skips ``validate``. Of two runs that overlap, the
    later stops here while the earlier is still running, before it could promote.

    The record is read again here too: if another execution promoted a model meanwhile,
    the candidate is compared with that one (on the record's figures, as the job scored
    the one before), not with the model it replaced.
    """
    settings = Settings.from_env()
    _check_no_earlier_run(event, note=f"this run's model {event['model_data']} was not compared")
    run = event["run"]
    production = read_record(_record_text(settings), source=settings.record_name)
    figures, paired = TrainingStorage(boto3.client("s3")).job_figures(event["model_data"])
    candidate = {
        "version": run["version"],
        "job": event["job"],
        "model_data": event["model_data"],
        "test_data": run["data"],  # its test split
        "figures": figures,
        "execution": event.get("execution_arn"),
    }
    promotion = run["promotion"]
    decision = decide(
        candidate,
        production,
        metric=promotion["metric"],
        margin=promotion["margin"],
        paired=paired,
    )
    logger.info("%s: %s", candidate["version"], decision.summary)
    return {
        "promote": decision.promote,
        "summary": decision.summary,
        "candidate": candidate,
        "production": production,
        "record": json.dumps(candidate, sort_keys=True),
    }
