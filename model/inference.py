"""The SageMaker inference handler: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

Requests (see the endpoint contract in docs/contracts.md):
- ``image/jpeg`` or ``image/png``: the photo itself -> one prediction.
- ``application/json`` ``{"s3_uri": "s3://bucket/key"}``: the endpoint reads the photo.
- ``application/json`` ``{"instances": [{"s3_uri": ...} | {"image_base64": ...}, ...]}``:
  several photos in one request -> ``{"predictions": [...], "model_version": ...}``, where a
  bad photo gets ``{"error": ..., "status": 4xx}`` in its place and the others are answered.

A photo that cannot be counted is refused with a 4xx and a message (``BadInput``), never
guessed at. In the container, ``model/container.py`` turns the refusal into the HTTP answer.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
from dataclasses import dataclass
from typing import Any

from .artifact import read_artifact
from .images import DEFAULT_MAX_BYTES, BadInput
from .predictor import Prediction, Predictor

JSON = "application/json"
IMAGE_TYPES = {"image/jpeg", "image/jpg", "image/png", "application/x-image"}
MAX_INSTANCES = 64


@dataclass
class Photo:
    source: str  # "body", an s3:// URI or "instances[i]": named in error messages
    data: bytes | None = None
    error: BadInput | None = None


@dataclass
class Request:
    photos: list[Photo]
    batch: bool


@dataclass
class Answers:
    results: list[Prediction | BadInput]
    batch: bool


def model_fn(model_dir: str) -> Predictor:
    """``BINCHECK_FAST_PATH``: ``1``/``0``; by default on where a GPU is."""
    import torch

    model, card = read_artifact(model_dir)
    fast = os.environ.get("BINCHECK_FAST_PATH", "auto")
    use_fast = torch.cuda.is_available() if fast == "auto" else fast == "1"
    return Predictor(model, card, fast=use_fast)


def input_fn(body: bytes | bytearray | str | None, content_type: str | None) -> Request:
    """``body`` is None for a form post: TorchServe hands its fields over apart."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in IMAGE_TYPES | {JSON}:
        raise BadInput(
            f"unsupported content type {content_type!r}: send image/jpeg, image/png or "
            "application/json",
            415,
        )
    data = body.encode() if isinstance(body, str) else bytes(body or b"")
    if media_type in IMAGE_TYPES:
        _check_size(len(data), "image")
        return Request([Photo("body", data)], batch=False)
    try:
        payload = json.loads(data)
    except ValueError as error:
        raise BadInput(f"request body is not valid JSON: {error}") from error
    if isinstance(payload, dict) and "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadInput('"instances" must be a non-empty list')
        if len(instances) > MAX_INSTANCES:
            raise BadInput(f"at most {MAX_INSTANCES} instances per request", 413)
        photos = [_fetch(item, f"instances[{i}]") for i, item in enumerate(instances)]
        return Request(photos, batch=True)
    photo = _fetch(payload, "body")
    if photo.error:
        raise photo.error
    return Request([photo], batch=False)


def predict_fn(request: Request, predictor: Predictor) -> Answers:
    photos = readable_photos(request)
    outcomes = predictor.predict_decoded(predictor.decode_many(list(photos.values())))
    return gather(request, dict(zip(photos, outcomes, strict=True)))


def readable_photos(request: Request) -> dict[int, bytes]:
    """The bytes of each photo that arrived, by photo index."""
    return {i: p.data or b"" for i, p in enumerate(request.photos) if p.error is None}


def gather(request: Request, outcomes: dict[int, Prediction | BadInput]) -> Answers:
    """Answers from what each readable photo came to (by photo index): a prediction, or a
    refusal of its image (a single photo raises it)."""
    for i, outcome in outcomes.items():
        if isinstance(outcome, BadInput):
            photo = request.photos[i]
            photo.error = _named(outcome, photo.source) if request.batch else outcome
    if not request.batch and request.photos[0].error:
        raise request.photos[0].error
    results = [
        photo.error if photo.error else outcomes[i] for i, photo in enumerate(request.photos)
    ]
    return Answers(results, request.batch)  # type: ignore[arg-type]


def output_fn(answers: Answers, accept: str | None) -> tuple[str, str]:
    media_type = (accept or JSON).split(";")[0].strip().lower()
    if media_type not in {JSON, "*/*", ""}:
        raise BadInput(f"unsupported accept type {accept!r}: answers are application/json", 406)
    if not answers.batch:
        [prediction] = answers.results
        return json.dumps(prediction.to_dict()), JSON  # type: ignore[union-attr]
    items = [
        r.to_dict() if isinstance(r, Prediction) else {"error": r.message, "status": r.status}
        for r in answers.results
    ]
    version = next((r.model_version for r in answers.results if isinstance(r, Prediction)), None)
    return json.dumps({"predictions": items, "model_version": version}), JSON


def _fetch(item: Any, source: str) -> Photo:
    """A photo from ``{"s3_uri": ...}`` or ``{"image_base64": ...}``; errors are kept."""
    try:
        if not isinstance(item, dict):
            raise BadInput(f'{source}: expected {{"s3_uri": ...}} or {{"image_base64": ...}}')
        if "s3_uri" in item:
            return Photo(item["s3_uri"], _read_s3(item["s3_uri"]))
        if "image_base64" in item:
            try:
                data = base64.b64decode(item["image_base64"], validate=True)
            except (binascii.Error, TypeError) as error:
                raise BadInput(f"{source}: image_base64 is not valid base64") from error
            _check_size(len(data), source)
            return Photo(source, data)
        raise BadInput(f'{source}: expected {{"s3_uri": ...}} or {{"image_base64": ...}}')
    except BadInput as error:
        return Photo(source, error=_named(error, source))


def _named(error: BadInput, source: str) -> BadInput:
    """Say which photo of a batch an error is about."""
    if source == "body" or error.message.startswith(source):
        return error
    return BadInput(f"{source}: {error.message}", error.status)


def _check_size(size: int, source: str) -> None:
    limit = int(os.environ.get("BINCHECK_MAX_IMAGE_BYTES", DEFAULT_MAX_BYTES))
    if size > limit:
        raise BadInput(f"{source}: {size} bytes, above the limit of {limit}", 413)


@functools.cache
def _s3() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard"}, read_timeout=10))


def _read_s3(uri: Any) -> bytes:
    """Missing objects are the caller's problem (404); an endpoint that may not read the
    bucket, or S3 failing, is ours (raised as is: a 5xx the caller retries)."""
    from botocore.exceptions import ClientError

    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise BadInput(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    try:
        head = _s3().head_object(Bucket=bucket, Key=key)
        _check_size(head["ContentLength"], uri)
        return _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}:
            raise BadInput(f"{uri} does not exist", 404) from error
        raise
