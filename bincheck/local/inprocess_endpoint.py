"""The counting endpoint served in-process: a botocore client's InvokeEndpoint calls are
answered by the model's own SageMaker handler functions (``input_fn`` -> ``predict_fn`` ->
``output_fn``), as the container would, before they leave the process.

A refusal (4xx) comes back the way SageMaker reports a model's client error: a
``ModelError`` with the original status and message.
"""

from __future__ import annotations

from typing import Any

from model.images import BadInput
from model.inference import input_fn, output_fn, predict_fn
from model.predictor import Predictor

from .responses import http_response


def attach(client: Any, predictor: Predictor) -> None:
    def before_send(request: Any, **kwargs: Any) -> Any:
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        try:
            answers = predict_fn(input_fn(body, _header(request, "Content-Type")), predictor)
            text, media_type = output_fn(answers, _header(request, "Accept"))
        except BadInput as error:
            refusal = {"OriginalStatusCode": error.status, "OriginalMessage": error.message}
            return http_response(request.url, 424, {"x-amzn-ErrorType": "ModelError"}, refusal)
        return http_response(request.url, 200, {"Content-Type": media_type}, text.encode())

    client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", before_send)


def _header(request: Any, name: str) -> str | None:
    """Prepared requests carry header values as bytes."""
    value = request.headers.get(name)
    return value.decode() if isinstance(value, bytes) else value
