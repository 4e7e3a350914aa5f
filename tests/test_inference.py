"""The SageMaker handler functions on real photos: formats, batches, bad input, fast path."""

from __future__ import annotations

import base64
import copy
import io
import json
import struct
import zlib

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from PIL import Image
from ts.context import Context, RequestProcessor

from model import inference
from model.artifact import read_artifact
from model.container import transform_fn
from model.images import BadInput
from model.predictor import Predictor

from .conftest import SAMPLE_COUNTS, sample_photo

FAST_PATH_TOLERANCE = 0.15  # largest per-class probability difference, fast vs plain


@pytest.fixture(scope="module")
def predictor(model_artifact):
    model, card = read_artifact(model_artifact)
    return Predictor(model, card)


def ask(predictor, body, content_type="image/jpeg", accept="application/json") -> dict:
    answer = inference.predict_fn(inference.input_fn(body, content_type), predictor)
    text, media_type = inference.output_fn(answer, accept)
    assert media_type == "application/json"
    return json.loads(text)


def refusal(predictor, body, content_type="image/jpeg", accept="application/json") -> BadInput:
    with pytest.raises(BadInput) as caught:
        ask(predictor, body, content_type, accept)
    return caught.value


def png(data: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "PNG")
    return out.getvalue()


def assert_prediction(answer: dict) -> None:
    assert set(answer) == {"count", "probabilities", "max_count", "model_version"}
    assert answer["max_count"] == 5
    assert answer["model_version"] == "test-1"
    assert len(answer["probabilities"]) == 6
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert answer["count"] == max(range(6), key=answer["probabilities"].__getitem__)


def assert_same(answer: dict, expected: dict) -> None:
    """Equal up to float noise: a batch and a single photo take different kernels."""
    assert answer["count"] == expected["count"]
    assert answer["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)


def test_jpeg_and_png_bodies_get_the_same_prediction(predictor):
    jpeg = ask(predictor, sample_photo())
    assert_prediction(jpeg)
    assert ask(predictor, png(sample_photo()), "image/png") == jpeg  # PNG is lossless
    assert ask(predictor, sample_photo(), "image/jpeg; charset=binary", "*/*") == jpeg


@pytest.fixture
def photos_bucket():
    with mock_aws():
        inference._s3.cache_clear()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="photos")
        for image_id in SAMPLE_COUNTS:
            s3.put_object(
                Bucket="photos", Key=f"bins/B/{image_id}.jpg", Body=sample_photo(image_id)
            )
        yield s3
        inference._s3.cache_clear()


def test_json_s3_uri_reads_the_photo_from_the_bucket(predictor, photos_bucket):
    answer = ask(
        predictor, json.dumps({"s3_uri": "s3://photos/bins/B/00579.jpg"}), "application/json"
    )
    assert answer == ask(predictor, sample_photo("00579"))


def test_batch_form_answers_each_photo_in_order_with_errors_in_place(predictor, photos_bucket):
    body = {
        "instances": [
            {"s3_uri": "s3://photos/bins/B/08128.jpg"},
            {"image_base64": base64.b64encode(sample_photo("00487")).decode()},
            {"s3_uri": "s3://photos/bins/B/missing.jpg"},
            {"image_base64": base64.b64encode(b"not an image").decode()},
            {"image_base64": "%%%"},
            {"url": "https://example.com/x.jpg"},
        ]
    }
    answer = ask(predictor, json.dumps(body).encode(), "application/json")

    assert answer["model_version"] == "test-1"
    first, second, *errors = answer["predictions"]
    assert_same(first, ask(predictor, sample_photo("08128")))
    assert_same(second, ask(predictor, sample_photo("00487")))
    assert errors == [
        {"error": "instances[2]: s3://photos/bins/B/missing.jpg does not exist", "status": 404},
        {"error": "instances[3]: not a JPEG or PNG image", "status": 415},
        {"error": "instances[4]: image_base64 is not valid base64", "status": 400},
        {
            "error": 'instances[5]: expected {"s3_uri": ...} or {"image_base64": ...}',
            "status": 400,
        },
    ]


def test_missing_object_and_bad_uri_are_client_errors(predictor, photos_bucket):
    missing = refusal(predictor, '{"s3_uri": "s3://photos/nope.jpg"}', "application/json")
    assert (missing.status, missing.message) == (404, "s3://photos/nope.jpg does not exist")
    bad = refusal(predictor, '{"s3_uri": "photos/x.jpg"}', "application/json")
    assert (bad.status, bad.message) == (400, "not an s3://bucket/key URI: 'photos/x.jpg'")


def test_an_endpoint_that_may_not_read_the_bucket_is_a_server_error(predictor, photos_bucket):
    # No such bucket is a 404; an S3 failure other than "missing" must not be blamed on
    # the photo, so it propagates (the container answers 5xx, the checker retries).
    photos_bucket.put_bucket_policy(
        Bucket="photos",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
                ],
            }
        ),
    )
    with pytest.raises(ClientError) as caught:
        ask(predictor, '{"s3_uri": "s3://photos/bins/B/00579.jpg"}', "application/json")
    assert caught.value.response["Error"]["Code"] in {"403", "AccessDenied"}


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a size; the pixels are never needed to refuse it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"", "image/jpeg", 400, "empty image"),
        (sample_photo()[:4000], "image/jpeg", 400, "corrupt or truncated JPEG image"),
        (b"GIF89a" + b"\0" * 100, "image/jpeg", 415, "not a JPEG or PNG image"),
        (_png_header(7000, 6000), "image/png", 413, "image is 7000x6000 = 42000000 pixels"),
        (_png_header(100_000, 100_000), "image/png", 413, "image too large"),
        (sample_photo(), "text/plain", 415, "unsupported content type 'text/plain'"),
        (b"{not json", "application/json", 400, "request body is not valid JSON"),
        (b'{"instances": []}', "application/json", 400, '"instances" must be a non-empty list'),
        (
            b'{"instances": [1] }'.replace(b"[1]", b"[" + b"1," * 64 + b"1]"),
            "application/json",
            413,
            "at most 64 instances per request",
        ),
    ],
)
def test_bad_input_is_refused_with_a_status_and_a_message(
    predictor, body, content_type, status, message
):
    error = refusal(predictor, body, content_type)
    assert error.status == status
    assert message in error.message


def test_gif_photo_is_an_unsupported_format(predictor):
    out = io.BytesIO()
    Image.open(io.BytesIO(sample_photo())).save(out, "GIF")
    error = refusal(predictor, out.getvalue(), "image/jpeg")
    assert (error.status, error.message) == (415, "unsupported image format GIF: send JPEG or PNG")


def test_oversized_bodies_and_unsupported_accept_types_are_refused(predictor, monkeypatch):
    monkeypatch.setenv("BINCHECK_MAX_IMAGE_BYTES", "1000")
    too_big = refusal(predictor, sample_photo())
    assert (too_big.status, too_big.message) == (413, "image: 18176 bytes, above the limit of 1000")
    monkeypatch.delenv("BINCHECK_MAX_IMAGE_BYTES")
    assert refusal(predictor, sample_photo(), accept="text/csv").status == 406


def torchserve_context(content_type: str) -> Context:
    """TorchServe's own request context, as its worker builds it for one request."""
    context = Context("model", "/opt/ml/model", {}, 1, None, "0.12.0")
    context.request_processor = [RequestProcessor({"Content-Type": content_type})]
    return context


def test_the_container_answers_a_photo_as_the_handler_does(predictor):
    context = torchserve_context("image/jpeg")
    text, media_type = transform_fn(predictor, sample_photo(), "image/jpeg", None, context)
    assert (media_type, json.loads(text)) == ("application/json", ask(predictor, sample_photo()))
    assert context.get_response_status(0)[0] == 200


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "phrase"),
    [
        (b"{not json", "application/json", None, 400, "Bad Request"),
        (None, "application/x-www-form-urlencoded", None, 415, "Unsupported Media Type"),
        (sample_photo(), "image/jpeg", "text/csv", 406, "Not Acceptable"),
    ],
)
def test_the_container_answers_a_refusal_as_json_with_its_status(
    predictor, body, content_type, accept, status, phrase
):
    """The toolkit would answer a raised refusal with its message and a traceback, as text."""
    context = torchserve_context(content_type)
    text, media_type = transform_fn(predictor, body, content_type, accept, context)
    refused = refusal(predictor, body, content_type, accept or "application/json")
    assert json.loads(text) == {"error": refused.message}
    assert media_type == "application/json"
    assert context.get_response_status(0) == (status, phrase)


def test_the_container_answers_a_failure_as_a_json_500_and_logs_the_traceback(
    predictor, photos_bucket, caplog
):
    photos_bucket.put_bucket_policy(
        Bucket="photos",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
                ],
            }
        ),
    )
    body = '{"s3_uri": "s3://photos/bins/B/00579.jpg"}'
    context = torchserve_context("application/json")
    text, _ = transform_fn(predictor, body, "application/json", None, context)
    assert context.get_response_status(0)[0] == 500
    assert json.loads(text) == {
        "error": "ClientError: An error occurred (403) when calling the HeadObject operation: "
        "Forbidden"
    }
    assert "Traceback" in caplog.text  # for the endpoint's log, not for the caller


def test_fast_path_gives_the_plain_paths_counts_on_real_photos(confident_artifact):
    model, card = read_artifact(confident_artifact)
    plain = Predictor(model, card, fast=False)
    fast = Predictor(copy.deepcopy(model), card, fast=True)
    photos = [sample_photo(image_id) for image_id in SAMPLE_COUNTS]
    # Camera-sized versions, where the fast path decodes at reduced scale.
    for data in list(photos):
        large = Image.open(io.BytesIO(data)).resize((4000, 3000), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        large.save(out, "JPEG", quality=92)
        photos.append(out.getvalue())

    reference = plain.predict([plain.decode(p) for p in photos])
    candidate = fast.predict([fast.decode(p) for p in photos])

    assert [r.count for r in candidate] == [r.count for r in reference]
    differences = [
        abs(p - q)
        for r, c in zip(reference, candidate, strict=True)
        for p, q in zip(r.probabilities, c.probabilities, strict=True)
    ]
    assert max(differences) <= FAST_PATH_TOLERANCE
    assert len({r.count for r in reference}) > 1  # the head is not answering one count


@pytest.mark.parametrize("batch_decoder", ["torchvision", "none"])
def test_device_decode_matches_the_plain_decode_and_refuses_each_bad_photo_in_place(
    batch_decoder, monkeypatch
):
    """``decode_batch`` on the CPU: the same code decodes with nvJPEG on a GPU. Without
    torchvision's decoder (deprecated since 0.29), every photo takes the plain path."""
    import torch

    from model import images
    from model.images import decode, decode_batch

    if batch_decoder == "none":
        monkeypatch.setattr(images, "decode_jpeg", None)

    good = [sample_photo(image_id) for image_id in SAMPLE_COUNTS]
    whole = sample_photo()
    padded_end = whole[:-2] + b"\0\0"  # no EOI marker: decoded the careful way
    photos = [
        good[0],
        whole[:4000],  # truncated
        png(good[1]),
        b"",
        _png_header(7000, 6000),
        good[2],
        padded_end,
    ]
    results = decode_batch(photos, (240, 320), device=torch.device("cpu"))

    for i in (0, 2, 5):
        assert torch.equal(results[i], decode(photos[i], (240, 320)))
    assert [(r.status, r.message[:26]) for r in (results[1], results[3], results[4])] == [
        (400, "corrupt or truncated JPEG "),
        (400, "empty image"),
        (413, "image is 7000x6000 = 42000"),
    ]
    # Without its EOI marker the photo skips the batch decoder; the careful way decodes it
    # whole, to the very pixels of the photo with its marker.
    assert isinstance(results[6], torch.Tensor)
    assert torch.equal(results[6], decode(padded_end, (240, 320)))
    assert torch.equal(results[6], decode(whole, (240, 320)))


def test_handler_answers_the_same_when_photos_are_decoded_on_the_device(predictor, monkeypatch):
    body = {
        "instances": [
            {"image_base64": base64.b64encode(sample_photo(image_id)).decode()}
            for image_id in SAMPLE_COUNTS
        ]
        + [{"image_base64": base64.b64encode(sample_photo()[:4000]).decode()}]
    }
    request = json.dumps(body).encode()
    expected = ask(predictor, request, "application/json")

    monkeypatch.setattr(Predictor, "decodes_on_device", property(lambda self: True))
    calls = []
    decode_batch = inference.Predictor.decode_many.__globals__["decode_batch"]
    monkeypatch.setitem(
        inference.Predictor.decode_many.__globals__,
        "decode_batch",
        lambda photos, *a, **k: calls.append(len(photos)) or decode_batch(photos, *a, **k),
    )
    answer = ask(predictor, request, "application/json")

    assert calls == [len(SAMPLE_COUNTS) + 1]  # one call for the whole request
    truncated = answer["predictions"][-1]
    assert truncated["status"] == 400
    assert truncated["error"].startswith("instances[7]: corrupt or truncated JPEG image")
    assert truncated == expected["predictions"][-1]
    for got, want in zip(answer["predictions"][:-1], expected["predictions"][:-1], strict=True):
        assert_same(got, want)
