"""Wiring: settings -> clients -> adapters -> checker, plus the per-record SQS logic."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from contract.keys import PHOTO_PREFIX, decode_event_key

from .adapters.alerts import AlertsTopic
from .adapters.aws import client, client_config
from .adapters.bins import BinsTable
from .adapters.checks import ChecksTable
from .adapters.endpoint import CountingEndpoint
from .adapters.photos import PhotoStore
from .service import Checker, PhotoEvent
from .settings import Settings

logger = Logger(child=True)
tracer = Tracer()


class RecordDeferred(RuntimeError):
    """Too little of the invocation is left to check a photo safely: SQS redelivers it."""


class CheckerApp:
    def __init__(
        self,
        checker: Checker,
        *,
        idempotency_store: DynamoDBPersistenceLayer,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.checker = checker
        self.metrics = metrics
        self.record_budget_ms = settings.record_time_budget_s * 1000
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="[bucket, key, etag]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_ttl_s,
            response_hook=self._on_duplicate,
        )
        self._check_once = idempotent_function(
            self._check,
            data_keyword_argument="photo",
            persistence_store=idempotency_store,
            config=self.idempotency,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, metrics: Metrics) -> CheckerApp:
        def config(read_timeout_s: float):
            return client_config(
                read_timeout_s=read_timeout_s,
                connect_timeout_s=settings.connect_timeout_s,
                max_attempts=settings.max_attempts,
            )

        aws = config(settings.aws_read_timeout_s)
        dynamodb = client("dynamodb", aws)
        photos = PhotoStore(client("s3", aws))
        checker = Checker(
            bins=BinsTable(settings.bins_table, dynamodb),
            checks=ChecksTable(settings.checks_table, dynamodb),
            endpoint=CountingEndpoint(
                settings.endpoint_name,
                client("sagemaker-runtime", config(settings.endpoint_read_timeout_s)),
                input_mode=settings.endpoint_input,
                photos=photos,
            ),
            alerts=AlertsTopic(settings.alerts_topic_arn, client("sns", aws)),
            photos=photos,
            thresholds=settings.thresholds,
            alert_statuses=settings.alert_statuses,
            review_statuses=settings.review_statuses,
            max_image_bytes=settings.max_image_bytes,
        )
        store = DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=dynamodb
        )
        return cls(checker, idempotency_store=store, settings=settings, metrics=metrics)

    def handle_sqs_record(
        self, record: SQSRecord, lambda_context: LambdaContext | None = None
    ) -> None:
        """One SQS message: an S3 notification with one or more object records."""
        try:
            # Records of a batch run one after another: once a slow endpoint has eaten the
            # invocation, hand the rest back to SQS rather than time out the whole batch.
            if lambda_context is not None:
                left_ms = lambda_context.get_remaining_time_in_millis()
                if left_ms < self.record_budget_ms:
                    raise RecordDeferred(
                        f"{left_ms} ms left, a check may need {self.record_budget_ms:.0f}"
                    )
            notification = json.loads(record.body)
            if notification.get("Event") == "s3:TestEvent":
                logger.info("acknowledged s3:TestEvent", extra={"notification": notification})
                return
            for s3_record in S3Event(notification).records:
                key = decode_event_key(s3_record.s3.get_object.key)
                if not s3_record.event_name.startswith("ObjectCreated"):
                    logger.info("ignored event", extra={"event": s3_record.event_name, "key": key})
                    continue
                if not key.startswith(PHOTO_PREFIX):
                    logger.info("ignored object outside bins/", extra={"key": key})
                    self.metrics.add_metric("IgnoredObjects", MetricUnit.Count, 1)
                    continue
                photo = PhotoEvent(
                    bucket=s3_record.s3.bucket.name,
                    key=key,
                    etag=s3_record.s3.get_object.etag,
                    event_time=s3_record.event_time,
                )
                self._check_once(photo=photo)
        except Exception:
            self.metrics.add_metric("ProcessingErrors", MetricUnit.Count, 1)
            logger.exception("record failed; SQS redelivers it", extra={"id": record.message_id})
            raise

    @tracer.capture_method
    def _check(self, *, photo: PhotoEvent) -> dict[str, Any] | None:
        record = self.checker.check(photo)
        if record is None:
            self.metrics.add_metric("IgnoredObjects", MetricUnit.Count, 1)
            return None
        with single_metric(
            name="Checks",
            unit=MetricUnit.Count,
            value=1,
            namespace=self.metrics.namespace,
            default_dimensions=self.metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="status", value=str(record.status))
        if record.latency_ms is not None:
            self.metrics.add_metric("EndpointLatency", MetricUnit.Milliseconds, record.latency_ms)
        return record.to_dict()

    def _on_duplicate(self, response: Any, idempotent_data: Any) -> Any:
        logger.info("duplicate delivery: photo already checked", extra={"check": response})
        self.metrics.add_metric("DuplicateDeliveries", MetricUnit.Count, 1)
        return response
