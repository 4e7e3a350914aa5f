"""The review use cases: the pending queue, one check with its photo, settling a check once,
and re-sending a settled review's notice.

Collaborators are passed in (``app.py`` wires them from the settings; the CLI from its own
clients), so the same rules hold for the API and for ``bincheck review``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from aws_lambda_powertools import Logger

from contract.check import CheckRecord, build_review_notice
from contract.review import BinUpdate, Resolution, Review, ReviewState, resolution_problem
from contract.times import format_timestamp, utc_now

from .adapters.notices import NoticeTopic
from .adapters.photos import PhotoLinks
from .adapters.store import NotPending, ReviewStore
from .errors import BadRequest, Conflict, NotFound, NoticeNotSent
from .inputs import Answer, Listing, Position

logger = Logger(child=True)


@dataclass(frozen=True)
class Page:
    checks: list[CheckRecord]
    next: Position | None  # where the next page starts; None: this was the last


@dataclass(frozen=True)
class Settlement:
    check: CheckRecord
    bin_update_detail: str  # what happened to the bins table, for a person to read


class ReviewService:
    def __init__(
        self,
        *,
        store: ReviewStore,
        photos: PhotoLinks,
        notices: NoticeTopic,
        update_bins: bool = False,
        photo_url_ttl_s: int = 300,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.photos = photos
        self.notices = notices
        self.update_bins = update_bins
        self.photo_url_ttl_s = photo_url_ttl_s
        self.clock = clock

    def pending(self, listing: Listing) -> Page:
        checks, following = self.store.pending(
            bin_id=listing.bin_id, after=listing.after, limit=listing.limit
        )
        return Page(checks, following)

    def get(self, bin_id: str, check_id: str) -> CheckRecord:
        record = self.store.get(bin_id, check_id)
        if record is None:
            raise NotFound(f"no check {check_id} of bin {bin_id}")
        return record

    def photo_url(self, record: CheckRecord) -> str:
        return self.photos.url(record.image_uri, self.photo_url_ttl_s)

    def settle(self, bin_id: str, check_id: str, answer: Answer, reviewer: str) -> Settlement:
        """Record ``reviewer``'s answer once, maybe update the bin, publish the notice."""
        record = self.get(bin_id, check_id)
        if record.review_state is not ReviewState.PENDING or record.expected_quantity is None:
            raise Conflict(_not_pending(record))
        review = Review(
            reviewed_count=answer.reviewed_count,
            resolution=answer.resolution,
            reviewer=reviewer,
            reviewed_at=format_timestamp(self.clock()),
            note=answer.note,
        )
        problem = resolution_problem(record.expected_quantity, review)
        if problem:
            raise BadRequest(problem)
        if review.resolution is Resolution.FALSE_ALARM:
            wanted = BinUpdate.NOT_NEEDED
        else:
            wanted = BinUpdate.APPLIED if self.update_bins else BinUpdate.DISABLED
        try:
            done = self.store.settle(record, review, wanted)
        except NotPending:
            # Another reviewer settled it between the read and the write.
            raise Conflict(_not_pending(self.get(bin_id, check_id))) from None
        settled = replace(
            record,
            review_state=ReviewState.REVIEWED,
            reviewed_count=review.reviewed_count,
            reviewer=review.reviewer,
            reviewed_at=review.reviewed_at,
            resolution=review.resolution,
            note=review.note,
            bin_update=done,
        )
        detail = self._bin_update_detail(settled)
        logger.info("review settled", extra={"check": settled.to_dict(), "bins": detail})
        self._publish(settled)
        return Settlement(settled, detail)

    def notify(self, bin_id: str, check_id: str) -> CheckRecord:
        """Publish a settled review's notice again (after ``NoticeNotSent``)."""
        record = self.get(bin_id, check_id)
        if record.review_state is not ReviewState.REVIEWED:
            raise Conflict(f"check {check_id} of bin {bin_id} is not reviewed yet")
        self._publish(record)
        return record

    def _publish(self, record: CheckRecord) -> None:
        try:
            self.notices.publish(build_review_notice(record))
        except Exception as error:
            logger.exception("REVIEWED notice not published", extra={"check": record.to_dict()})
            raise NoticeNotSent(
                f"the review of check {record.check_id} of bin {record.bin_id} is settled, but "
                f"its REVIEWED message could not be published ({type(error).__name__}); "
                "send it again with `bincheck review notify`"
            ) from error

    def _bin_update_detail(self, record: CheckRecord) -> str:
        bin_id, count = record.bin_id, record.reviewed_count
        if record.bin_update is BinUpdate.APPLIED:
            return (
                f"bin {bin_id}: expected_quantity set to {count} (was "
                f"{record.expected_quantity}), updated_at {record.reviewed_at}"
            )
        if record.bin_update is BinUpdate.NOT_NEEDED:
            return f"bin {bin_id}: left alone, it holds what the bins table says"
        if record.bin_update is BinUpdate.DISABLED:
            return (
                f"bin {bin_id}: left alone, reviews do not update the bins table here "
                "(UPDATE_BINS is off): the warehouse system applies the REVIEWED message"
            )
        now = self.store.current_bin(bin_id)
        if now is None:
            return f"bin {bin_id}: not updated, it is no longer in the bins table"
        return (
            f"bin {bin_id}: not updated, it changed since the photo (the check saw "
            f"expected_quantity {record.expected_quantity}, updated_at "
            f"{record.bin_updated_at or 'none'}; now {now[0]}, updated_at {now[1] or 'none'})"
        )


def _not_pending(record: CheckRecord) -> str:
    where = f"check {record.check_id} of bin {record.bin_id}"
    if record.review_state is ReviewState.REVIEWED:
        return (
            f"{where} is already reviewed: {record.resolution}, {record.reviewed_count} "
            f"counted by {record.reviewer} at {record.reviewed_at}"
        )
    return f"{where} is not pending review (status {record.status})"
