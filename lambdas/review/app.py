"""Wiring: settings -> clients -> adapters -> the review service."""

from __future__ import annotations

from .adapters.aws import client
from .adapters.notices import NoticeTopic
from .adapters.photos import PhotoLinks
from .adapters.store import ReviewStore
from .service import ReviewService
from .settings import Settings


def build_service(settings: Settings) -> ReviewService:
    timeouts = dict(
        read_timeout_s=settings.aws_read_timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        max_attempts=settings.max_attempts,
    )
    return ReviewService(
        store=ReviewStore(
            checks_table=settings.checks_table,
            bins_table=settings.bins_table,
            client=client("dynamodb", **timeouts),
        ),
        photos=PhotoLinks(client("s3", **timeouts)),
        notices=NoticeTopic(settings.alerts_topic_arn, client("sns", **timeouts)),
        update_bins=settings.update_bins,
        photo_url_ttl_s=settings.photo_url_ttl_s,
    )
