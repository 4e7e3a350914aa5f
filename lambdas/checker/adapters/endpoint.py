"""The counting endpoint: asks the SageMaker model for the count distribution of a photo."""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from contract.decision import CountPrediction, InvalidPrediction

from .photos import PhotoStore

MAX_MESSAGE = 500  # characters of the model's message kept in the record and the alert


class ImageRejected(Exception):
    """The model refused the photo with a 4xx (undecodable, too large...): permanent. Its
    text is the model's own message, one line."""


class CountingEndpoint:
    """``s3_uri`` mode sends ``{"s3_uri": ...}`` and the model reads the photo itself (no
    payload limit, no bytes through the function); ``bytes`` mode sends the image."""

    def __init__(
        self, name: str, client: Any, *, input_mode: str = "s3_uri", photos: PhotoStore
    ) -> None:
        self.name = name
        self.client = client
        self.input_mode = input_mode
        self.photos = photos

    def count(self, *, bucket: str, key: str, content_type: str) -> tuple[CountPrediction, float]:
        """The model's prediction and the endpoint latency in milliseconds."""
        if self.input_mode == "bytes":
            body: bytes = self.photos.read(bucket, key)
        else:
            body = json.dumps({"s3_uri": f"s3://{bucket}/{key}"}).encode()
            content_type = "application/json"
        started = time.perf_counter()
        try:
            response = self.client.invoke_endpoint(
                EndpointName=self.name,
                ContentType=content_type,
                Accept="application/json",
                Body=body,
            )
        except ClientError as error:
            # 4xx from the model container means the photo itself is bad; everything else
            # (5xx, throttling left after botocore's retries) is worth another try later.
            if _is_client_error_from_model(error):
                raise ImageRejected(model_message(error)) from error
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        raw = response["Body"].read()
        try:
            payload = json.loads(raw)
        except ValueError as error:
            raise InvalidPrediction(f"endpoint answered non-JSON: {raw[:200]!r}") from error
        if not isinstance(payload, dict):
            raise InvalidPrediction(f"endpoint answered {type(payload).__name__}, not an object")
        return CountPrediction.from_response(payload), latency_ms


def _is_client_error_from_model(error: ClientError) -> bool:
    original_status = error.response.get("OriginalStatusCode") or 0
    return error.response["Error"]["Code"] == "ModelError" and 400 <= original_status < 500


def model_message(error: ClientError) -> str:
    """The first line of what the model said: the text of its ``{"error": ...}`` body, else
    the body's own first line (a server that answers a traceback keeps it to itself)."""
    body = error.response.get("OriginalMessage") or error.response["Error"].get("Message") or ""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        body = payload["error"]
    lines = body.strip().splitlines()
    return (lines[0].strip() if lines else str(error))[:MAX_MESSAGE]
