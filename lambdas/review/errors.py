"""What the review API refuses, each with the HTTP status it answers with."""

from __future__ import annotations


class ReviewError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ReviewError):
    status_code = 400


class Unauthorized(ReviewError):
    status_code = 401


class NotFound(ReviewError):
    status_code = 404


class Conflict(ReviewError):
    """The check is not pending: never reviewable, or settled already."""

    status_code = 409


class NoticeNotSent(ReviewError):
    """The review is settled, but its REVIEWED message could not be published."""

    status_code = 502
