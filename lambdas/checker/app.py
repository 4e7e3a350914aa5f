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

from .adapters.alerts import AlertsTopic
from .adapters.aws import client, client_config
from .adapters.bins import BinsTable
from .adapters.checks import ChecksTable
from .adapters.endpoint import CountingEndpoint
from .adapters.photos import PhotoStore
from .domain.keys import PHOTO_PREFIX, decode_event_key
from .service import Checker, PhotoEvent
from .settings import Settings

logger = Logger(child=True)
tracer = Tracer()


class CheckerApp:
    def __init__(self, checker: Checker, *, settings: Settings, metrics: Metrics) -> None:
        self.checker = checker
        self.metrics = metrics
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="[bucket, key, etag]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_ttl_s,
            response_hook=self._on_duplicate,
        )
        persistence = DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table,
            boto3_client=client("dynamodb", self._config(settings)),
        )
        self._check_once = idempotent_function(
            self._check,
            data_keyword_argument="photo",
            persistence_store=persistence,
            config=self.idempotency,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, metrics: Metrics) -> CheckerApp:
        config = cls._config(settings)
        endpoint_config = client_config(
            read_timeout_s=settings.endpoint_read_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            max_attempts=settings.max_attempts,
        )
        dynamodb = client("dynamodb", config)
        photos = PhotoStore(client("s3", config))
        checker = Checker(
            bins=BinsTable(settings.bins_table, dynamodb),
            checks=ChecksTable(settings.checks_table, dynamodb),
            endpoint=CountingEndpoint(
                settings.endpoint_name,
                client("sagemaker-runtime", endpoint_config),
                input_mode=settings.endpoint_input,
                photos=photos,
            ),
            alerts=AlertsTopic(settings.alerts_topic_arn, client("sns", config)),
            photos=photos,
            thresholds=settings.thresholds,
            alert_statuses=settings.alert_statuses,
            max_image_bytes=settings.max_image_bytes,
        )
        return cls(checker, settings=settings, metrics=metrics)

    @staticmethod
    def _config(settings: Settings):
        return client_config(
            read_timeout_s=5.0,
            connect_timeout_s=settings.connect_timeout_s,
            max_attempts=settings.max_attempts,
        )

    def handle_sqs_record(self, record: SQSRecord) -> None:
        """One SQS message: an S3 notification with one or more object records."""
        try:
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
