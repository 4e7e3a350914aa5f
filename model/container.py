"""What the AWS inference toolkit runs in the container: ``model_fn`` and ``transform_fn``.

The toolkit answers an exception from a handler function with its message followed by the
Python traceback, as plain text. ``transform_fn`` therefore raises nothing: it answers each
request itself, a refusal as the contract's ``{"error": ...}`` with its status, and any
other failure as a 500 of the same form whose traceback goes to the log only.

The toolkit passes TorchServe's request context as the fifth argument because
``transform_fn`` takes one; the status is set on it.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from .images import BadInput
from .inference import JSON, input_fn, model_fn, output_fn, predict_fn
from .predictor import Predictor

__all__ = ["model_fn", "transform_fn"]

log = logging.getLogger(__name__)


def transform_fn(
    predictor: Predictor,
    body: bytes | bytearray | str | None,
    content_type: str | None,
    accept: str | None,
    context: Any = None,
) -> tuple[str, str]:
    """The answer to one request and its content type; ``context`` gets the status."""
    try:
        return output_fn(predict_fn(input_fn(body, content_type), predictor), accept)
    except BadInput as error:
        return error_answer(context, error.status, error.message)
    except Exception as error:  # the caller retries a 5xx; the log keeps the traceback
        log.exception("invocation failed")
        return error_answer(context, 500, first_line(f"{type(error).__name__}: {error}"))


def error_answer(context: Any, status: int, message: str) -> tuple[str, str]:
    if context is not None:
        context.set_response_status(code=status, phrase=HTTPStatus(status).phrase)
    return json.dumps({"error": message}), JSON


def first_line(text: str, limit: int = 300) -> str:
    return text.strip().splitlines()[0][:limit] if text.strip() else ""
