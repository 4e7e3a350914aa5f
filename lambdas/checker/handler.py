"""Checker Lambda: S3 photo notifications arrive through SQS, one verdict per photo."""

from __future__ import annotations

import functools
import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from .app import CheckerApp
from .settings import Settings

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "bin-checker"))
tracer = Tracer()
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "BinChecker"))
# A batch whose every record failed is still answered with batchItemFailures (not an
# exception): SQS treats both alike, and one reporting path is easier to reason about.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@functools.cache
def get_app() -> CheckerApp:
    """Built on the first invocation, reused while the execution environment lives."""
    return CheckerApp.from_settings(Settings.from_env(), metrics=metrics)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    app = get_app()
    # Lets an in-flight idempotency record expire with this invocation if it times out.
    app.idempotency.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=app.handle_sqs_record, processor=processor, context=context
    )
