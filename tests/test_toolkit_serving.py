"""The model artifact under AWS's own serving stack: the SageMaker PyTorch inference toolkit
and TorchServe, started as the container starts them (``tests/toolkit_server.py``), with no
package index and no timm but the artifact's own.

Both the shipped artifact and one freshly written by ``model/artifact.py`` must start, and
then answer exactly as the in-process handler (``model/inference.py``) does: the same
predictions, and each refusal of the contract with its status and a JSON ``{"error": ...}``
body, without a traceback. The slowest test of the suite: TorchServe and its worker start
twice.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from model import inference
from model.images import BadInput
from model.layout import MODEL_SERVER_ENVIRONMENT

from .conftest import SAMPLE_COUNTS, SAMPLES, sample_photo
from .test_inference import _png_header
from .toolkit_server import ToolkitServer, container_python, free_port, java_missing, start

pytestmark = pytest.mark.skipif(java_missing() is not None, reason=str(java_missing()))

SHIPPED = SAMPLES.parents[1] / "model" / "default" / "model.tar.gz"
LOAD_TIMEOUT_S = 300  # a bound, not the expected time: TorchServe, torch, timm, weights
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
DENY_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def s3_endpoint():
    """S3 for ``{"s3_uri": ...}`` requests: a bucket of photos, and one nobody may read."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="photos")
    for image_id in SAMPLE_COUNTS:
        s3.put_object(Bucket="photos", Key=f"bins/B/{image_id}.jpg", Body=sample_photo(image_id))
    s3.create_bucket(Bucket="denied")
    s3.put_object(Bucket="denied", Key="bins/B/00579.jpg", Body=sample_photo())
    s3.put_bucket_policy(Bucket="denied", Policy=json.dumps(DENY_ALL))
    yield url
    server.stop()


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    return container_python(tmp_path_factory.mktemp("container") / "venv")


@pytest.fixture(scope="module", params=["shipped", "fresh"])
def served(request, python, s3_endpoint, tmp_path_factory):
    """The toolkit serving an artifact, once its model is loaded; with the answer to a
    request sent as soon as ``/ping`` said healthy."""
    artifact = SHIPPED if request.param == "shipped" else request.getfixturevalue("model_artifact")
    settings = MODEL_SERVER_ENVIRONMENT | CREDENTIALS | {"AWS_ENDPOINT_URL": s3_endpoint}
    server = start(artifact, tmp_path_factory.mktemp(request.param), python, settings)
    try:
        started = time.monotonic()
        server.wait_until_healthy(LOAD_TIMEOUT_S)
        server.timings["healthy_s"] = time.monotonic() - started
        early: list = []
        sender = threading.Thread(
            target=lambda: early.append(
                server.post(sample_photo(), "image/jpeg", timeout_s=LOAD_TIMEOUT_S)
            ),
            daemon=True,
        )
        sender.start()
        wait_until_loaded(server, started + LOAD_TIMEOUT_S)
        server.timings["loaded_s"] = time.monotonic() - started
        sender.join(timeout=LOAD_TIMEOUT_S)
        server.timings["first_answer_s"] = time.monotonic() - started
        server.early = early[0] if early else None
        yield server
    finally:
        server.stop()
        print(f"{request.param}: {server.timings}")


@pytest.fixture(scope="module")
def predictor(served, s3_endpoint):
    """The in-process handler on the same model folder, reading the same S3."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (CREDENTIALS | {"AWS_ENDPOINT_URL": s3_endpoint}).items():
            patch.setenv(name, value)
        inference._s3.cache_clear()
        yield inference.model_fn(str(served.model_dir))
        inference._s3.cache_clear()


def wait_until_loaded(server: ToolkitServer, deadline: float) -> None:
    """Until TorchServe's management API calls the worker READY: ``model_fn`` has returned.
    ``/ping`` says healthy as soon as the worker process runs, before that."""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.url}/models/model", timeout=5) as response:
            [description] = json.load(response)
        if [w["status"] for w in description["workers"]] == ["READY"]:
            return
        if server.process.poll() is not None:
            break
        time.sleep(1)
    raise TimeoutError(f"the model never loaded:\n{server.log_tail()}")


def in_process(predictor, body, content_type: str, accept: str = "application/json"):
    """The handler's status and answer for a request, without the container."""
    try:
        request = inference.input_fn(body, content_type)
        text, _ = inference.output_fn(inference.predict_fn(request, predictor), accept)
    except BadInput as error:
        return error.status, {"error": error.message}
    return 200, json.loads(text)


def assert_same_answer(served_answer: dict, expected: dict) -> None:
    """Equal counts, versions and errors; probabilities up to float noise (the worker may
    run on another number of threads)."""
    if "predictions" in expected:
        assert served_answer["model_version"] == expected["model_version"]
        assert len(served_answer["predictions"]) == len(expected["predictions"])
        for got, want in zip(served_answer["predictions"], expected["predictions"], strict=True):
            assert_same_answer(got, want)
        return
    if "error" in expected:
        assert served_answer == expected
        return
    assert {k: v for k, v in served_answer.items() if k != "probabilities"} == {
        k: v for k, v in expected.items() if k != "probabilities"
    }
    assert served_answer["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)


def png(data: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_request_sent_once_ping_is_healthy_waits_for_the_model(served, predictor):
    status, content_type, body = served.early
    assert (status, content_type) == (200, "application/json")
    assert_same_answer(json.loads(body), in_process(predictor, sample_photo(), "image/jpeg")[1])


GOOD = {
    "jpeg": (sample_photo("00487"), "image/jpeg"),
    "png": (png(sample_photo("08128")), "image/png"),
    "s3_uri": (b'{"s3_uri": "s3://photos/bins/B/00579.jpg"}', "application/json"),
    "batch": (
        json.dumps(
            {
                "instances": [
                    {"s3_uri": "s3://photos/bins/B/08128.jpg"},
                    {"image_base64": b64(sample_photo("00487"))},
                    {"s3_uri": "s3://photos/bins/B/missing.jpg"},
                    {"image_base64": b64(sample_photo()[:4000])},
                ]
            }
        ).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("name", GOOD)
def test_answers_are_the_in_process_handlers(served, predictor, name):
    body, content_type = GOOD[name]
    status, served_type, answer = served.post(body, content_type)
    assert (status, served_type) == (200, "application/json")
    assert_same_answer(json.loads(answer), in_process(predictor, body, content_type)[1])


MiB = 1024 * 1024
REFUSED = {
    "empty photo": (b"", "image/jpeg", None, 400),
    "truncated photo": (sample_photo()[:4000], "image/jpeg", None, 400),
    "not an image": (b"GIF89a" + b"\0" * 100, "image/jpeg", None, 415),
    "too many pixels": (_png_header(7000, 6000), "image/png", None, 413),
    # Above TorchServe's default request limit (6,553,500 bytes): the handler's limit holds.
    "too many bytes": (b"\xff" * (20 * MiB + 1), "image/jpeg", None, 413),
    "unsupported content type": (sample_photo(), "text/plain", None, 415),
    "form post": (b"photo=1", "application/x-www-form-urlencoded", None, 415),
    "bad JSON": (b"{not json", "application/json", None, 400),
    "not an s3 URI": (b'{"s3_uri": "photos/x.jpg"}', "application/json", None, 400),
    "missing object": (b'{"s3_uri": "s3://photos/nope.jpg"}', "application/json", None, 404),
    "too many instances": (
        json.dumps({"instances": [{"s3_uri": "s3://photos/x.jpg"}] * 65}).encode(),
        "application/json",
        None,
        413,
    ),
    "unsupported accept": (sample_photo(), "image/jpeg", "text/csv", 406),
}


@pytest.mark.parametrize("name", REFUSED)
def test_each_refusal_is_its_status_and_a_json_error_without_a_traceback(served, predictor, name):
    body, content_type, accept, status = REFUSED[name]
    got_status, served_type, answer = served.post(body, content_type, accept)
    expected = in_process(predictor, body, content_type, accept or "application/json")
    assert expected[0] == status  # the contract's status, in process
    assert (got_status, served_type) == (status, "application/json"), answer[:300]
    assert "Traceback" not in answer.decode() and 'File "' not in answer.decode()
    assert json.loads(answer) == expected[1]


def test_a_photo_the_endpoint_may_not_read_is_a_json_500_without_a_traceback(served):
    """The endpoint's problem, not the photo's: a 5xx the checker retries."""
    status, served_type, answer = served.post(
        b'{"s3_uri": "s3://denied/bins/B/00579.jpg"}', "application/json"
    )
    assert (status, served_type) == (500, "application/json")
    [(key, message)] = json.loads(answer).items()
    assert key == "error" and message.startswith("ClientError: An error occurred (403)")
    assert "\n" not in message and "Traceback" not in answer.decode()
