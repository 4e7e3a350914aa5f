"""Review API Lambda: an API Gateway HTTP API (payload 2.0) behind a Cognito JWT authorizer.

    GET  /checks?state=pending&bin=&cursor=&limit=   the pending queue, oldest capture first
    GET  /checks/{id}                                one check, a photo link, the distribution
    GET  /                                           the review page (no token: it signs in)
    POST /checks/{id}/review                         settle it: {"reviewed_count", "resolution",
                                                     "note"}; the reviewer is the signed-in user

Every refusal is a 4xx with ``{"error": "..."}`` (``errors.py``) and changes nothing.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from .app import build_service
from .errors import ReviewError
from .inputs import (
    encode_cursor,
    parse_answer,
    parse_check_ref,
    parse_listing,
    reviewer_from_claims,
)
from .page import render as render_page
from .service import ReviewService
from .settings import PageSettings, Settings
from .views import check_view

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "bin-review"))
tracer = Tracer()
app = APIGatewayHttpResolver()
PAGE_ROUTE = "GET /"  # the one route API Gateway serves without the authorizer


@functools.cache
def get_service() -> ReviewService:
    """Built on the first request, reused while the execution environment lives."""
    return build_service(Settings.from_env())


@functools.cache
def get_page_settings() -> PageSettings:
    return PageSettings.from_env()


def signed_in(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """Every route but the page needs a caller the authorizer verified (defence in depth: API
    Gateway refuses a missing or bad token before the function runs)."""
    if resolver.current_event.route_key == PAGE_ROUTE:
        return next_middleware(resolver)
    claims = resolver.current_event.request_context.authorizer.jwt_claim
    resolver.append_context(reviewer=reviewer_from_claims(claims))
    return next_middleware(resolver)


app.use(middlewares=[signed_in])


@app.get("/")
def review_page() -> Response:
    """The review page, without a token: it signs the person in itself."""
    html, headers = render_page(get_page_settings())
    return Response(200, headers=headers, body=html)


@app.get("/checks")
def list_checks() -> dict[str, Any]:
    listing = parse_listing(app.current_event.query_string_parameters)
    page = get_service().pending(listing)
    return {
        "checks": [check_view(record) for record in page.checks],
        "cursor": None if page.next is None else encode_cursor(page.next),
    }


@app.get("/checks/<ref>")
def show_check(ref: str) -> dict[str, Any]:
    service = get_service()
    record = service.get(*parse_check_ref(ref))
    return check_view(record) | {
        "photo_url": service.photo_url(record),
        "photo_url_expires_in_s": service.photo_url_ttl_s,
    }


@app.post("/checks/<ref>/review")
def settle_check(ref: str) -> dict[str, Any]:
    bin_id, check_id = parse_check_ref(ref)
    answer = parse_answer(app.current_event.decoded_body)
    settlement = get_service().settle(bin_id, check_id, answer, app.context["reviewer"])
    return {
        "check": check_view(settlement.check),
        "bin_update": {
            "result": str(settlement.check.bin_update),
            "detail": settlement.bin_update_detail,
        },
    }


@app.exception_handler(ReviewError)
def refused(error: ReviewError) -> Response:
    logger.info("request refused", extra={"status": error.status_code, "error": error.message})
    return _error(error.status_code, error.message)


@app.not_found
def no_route(error: Exception) -> Response:
    event = app.current_event
    return _error(404, f"no route {event.http_method} {event.path}")


def _error(status: int, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, json.dumps({"error": message}))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
