"""One synthesis of the CDK app with the training pipeline configured, shared by the
pipeline's template tests and its execution tests (a synthesis takes seconds).

Synthesized for moto's account and region, so that the template's ARNs are the ones the
execution tests' moto resources have. The endpoint serves the shipped default model, whose
card seeds the production record; its name is as long as SageMaker allows (63 characters),
so that the executed notices show that their SNS subjects fit (under 100) with any name.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from infra.app import build

REPO = Path(__file__).resolve().parents[1]
ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = "bincheck-training-test"  # the name the execution tests give the training bucket
ENDPOINT = "bincheck-counter-warehouse-eu-central-1-aisles-001-to-048-night"
assert len(ENDPOINT) == 63  # SageMaker's longest endpoint name
SETTINGS = {
    "endpoint_name": ENDPOINT,
    "pipeline_schedule": "rate(7 days)",
    "pipeline_defaults": {
        "data": f"s3://{BUCKET}/data/abid/",
        "max_jobs": 6,
        "max_parallel_jobs": 2,
        "hyperparameters": {"epochs": 12, "workers": 4},
    },
    # Off by default (tests/test_infra.py); on here, so that the template tests and the
    # executed definition cover the final job's request with profiling.
    "training_profiler": True,
}
_OUT = tempfile.TemporaryDirectory(prefix="bincheck-pipeline-cdk-")


@dataclass(frozen=True)
class Synthesized:
    template: Template
    raw: dict[str, Any]
    directory: Path


@functools.cache
def pipeline_stack() -> Synthesized:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    context["bincheck"] = SETTINGS
    app = App(context=context, outdir=str(Path(_OUT.name) / "cdk.out"))
    stack = build(app, env=Environment(account=ACCOUNT, region=REGION))
    assembly = app.synth()  # cdk-nag runs here: a finding raises
    template = Template.from_stack(stack)
    return Synthesized(
        template=template, raw=template.to_json(), directory=Path(assembly.directory)
    )
