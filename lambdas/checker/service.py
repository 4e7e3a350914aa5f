"""Check one uploaded photo against its bin: the checker's use case.

Collaborators are passed in, so this reads as the sequence of decisions it is:
key -> photo -> bin -> staleness -> size -> model -> verdict -> review -> record -> alert.
Transient failures propagate (SQS retries the message); permanent ones become records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from aws_lambda_powertools import Logger

from contract.check import CheckRecord, build_alert
from contract.decision import Status, Thresholds, is_stale, judge
from contract.keys import InvalidPhotoKey, parse_photo_key
from contract.review import DEFAULT_REVIEW_STATUSES, ReviewState
from contract.times import format_timestamp, parse_timestamp, utc_now

from .adapters.alerts import AlertsTopic
from .adapters.bins import BinsTable
from .adapters.checks import ChecksTable
from .adapters.endpoint import CountingEndpoint, ImageRejected
from .adapters.photos import PhotoStore, StoredPhoto

logger = Logger(child=True)


@dataclass(frozen=True)
class PhotoEvent:
    """What an S3 ``ObjectCreated`` notification says about one photo (key decoded)."""

    bucket: str
    key: str
    etag: str
    event_time: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Checker:
    def __init__(
        self,
        *,
        bins: BinsTable,
        checks: ChecksTable,
        endpoint: CountingEndpoint,
        alerts: AlertsTopic,
        photos: PhotoStore,
        thresholds: Thresholds,
        alert_statuses: frozenset[Status],
        max_image_bytes: int,
        review_statuses: frozenset[Status] = DEFAULT_REVIEW_STATUSES,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.bins = bins
        self.checks = checks
        self.endpoint = endpoint
        self.alerts = alerts
        self.photos = photos
        self.thresholds = thresholds
        self.alert_statuses = alert_statuses
        self.max_image_bytes = max_image_bytes
        self.review_statuses = review_statuses
        self.clock = clock

    def check(self, photo: PhotoEvent) -> CheckRecord | None:
        """Judge, record and (maybe) alert; ``None`` for an object that names no bin."""
        record = self._judge(photo)
        if record is None:
            return None
        if record.status in self.review_statuses:
            record = replace(record, review_state=ReviewState.PENDING)
        if not self.checks.put(record):
            logger.warning(
                "check already reviewed: the record is kept as the reviewer settled it",
                extra={"check": record.to_dict()},
            )
        if record.status in self.alert_statuses:
            self.alerts.publish(build_alert(record))
        logger.info("photo checked", extra={"check": record.to_dict()})
        return record

    def _judge(self, photo: PhotoEvent) -> CheckRecord | None:
        try:
            key = parse_photo_key(photo.key)
        except InvalidPhotoKey as error:
            if error.bin_id is None:
                logger.warning("ignored object: no bin in its key", extra={"key": photo.key})
                return None
            capture_id = photo.key.rsplit("/", 1)[-1]
            return _invalid(self._base(photo, error.bin_id, capture_id, None), error.reason)
        if key is None:
            logger.info("ignored object outside bins/", extra={"key": photo.key})
            return None

        stored = self.photos.describe(photo.bucket, photo.key)
        record = self._base(photo, key.bin_id, key.capture_id, stored)
        if stored is None:
            return _invalid(record, "photo no longer exists in the bucket")
        bin_ = self.bins.get(key.bin_id)
        if bin_ is None:
            return replace(record, status=Status.UNKNOWN_BIN)
        record = replace(
            record,
            expected_quantity=bin_.expected_quantity,
            bin_updated_at=format_timestamp(bin_.updated_at) if bin_.updated_at else None,
        )
        if is_stale(parse_timestamp(record.captured_at), bin_.updated_at):
            updated = format_timestamp(bin_.updated_at)
            return replace(record, status=Status.STALE, detail=f"bin quantity updated at {updated}")
        if stored.size == 0:
            return _invalid(record, "photo is empty")
        if stored.size > self.max_image_bytes:
            return _invalid(
                record, f"photo is {stored.size} bytes, above the limit of {self.max_image_bytes}"
            )
        try:
            prediction, latency_ms = self.endpoint.count(
                bucket=photo.bucket, key=photo.key, content_type=key.content_type
            )
        except ImageRejected as error:
            return _invalid(record, f"model rejected the photo: {error}")
        verdict = judge(bin_.expected_quantity, prediction, self.thresholds)
        return replace(
            record,
            status=verdict.status,
            predicted_count=prediction.count,
            probability=round(verdict.probability, 6),
            probabilities=tuple(round(p, 6) for p in prediction.probabilities),
            model_version=prediction.model_version,
            latency_ms=round(latency_ms, 1),
        )

    def _base(
        self, photo: PhotoEvent, bin_id: str, capture_id: str, stored: StoredPhoto | None
    ) -> CheckRecord:
        """The record's identity; its status is decided by the caller."""
        return CheckRecord(
            bin_id=bin_id,
            capture_id=capture_id,
            image_uri=photo.uri,
            etag=photo.etag,
            captured_at=self._captured_at(photo, stored),
            checked_at=format_timestamp(self.clock()),
            status=Status.INVALID_IMAGE,
        )

    @staticmethod
    def _captured_at(photo: PhotoEvent, stored: StoredPhoto | None) -> str:
        """The camera's ``captured-at`` metadata if it is valid, else the S3 event time."""
        if stored is not None and stored.captured_at:
            try:
                return format_timestamp(parse_timestamp(stored.captured_at))
            except ValueError:
                logger.warning(
                    "invalid captured-at metadata; using the event time",
                    extra={"key": photo.key, "captured_at": stored.captured_at},
                )
        return format_timestamp(parse_timestamp(photo.event_time))


def _invalid(record: CheckRecord, reason: str) -> CheckRecord:
    return replace(record, status=Status.INVALID_IMAGE, detail=reason)
