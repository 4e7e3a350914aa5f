"""``bincheck serve`` over HTTP: the container contract, concurrency, errors, a busy port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import SAMPLE_COUNTS, sample_photo

# The fast path's stated tolerance against the plain path, on any probability
# (docs/performance.md, "Fast path fidelity"); tests/test_inference.py holds it too.
FAST_PATH_TOLERANCE = 0.15


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, body: bytes | None = None, content_type: str = "image/jpeg"):
    headers = {"Content-Type": content_type} if body is not None else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, headers=headers), timeout=30
        ) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def serve_command(model, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bincheck.cli",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
    ]


@pytest.fixture(scope="module")
def server(model_artifact):
    port = free_port()
    process = subprocess.Popen(
        serve_command(model_artifact, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bincheck serve exited: {process.stdout.read()}")
        try:
            if request(f"{url}/ping")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("bincheck serve did not answer /ping in 120 s")
    yield url, port
    process.terminate()
    process.wait(timeout=30)


def test_ping_names_the_model(server):
    url, _ = server
    assert request(f"{url}/ping") == (200, {"status": "healthy", "model_version": "test-1"})


def test_concurrent_requests_are_each_answered_like_the_handler_answers(
    server, model_artifact, monkeypatch
):
    from model import inference

    url, _ = server
    photos = [sample_photo(image_id) for image_id in SAMPLE_COUNTS] * 4

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: request(f"{url}/invocations", p), photos))

    # What the container answers for each photo alone, through the handler functions as
    # the inference toolkit calls them; on the plain path (the reference: the server runs
    # the fast path, held to FAST_PATH_TOLERANCE of it with the same counts).
    monkeypatch.setenv("BINCHECK_FAST_PATH", "0")
    predictor = inference.model_fn(str(model_artifact))
    expected = {}
    for photo in dict.fromkeys(photos):
        request_ = inference.input_fn(photo, "image/jpeg")
        text, _ = inference.output_fn(inference.predict_fn(request_, predictor), "application/json")
        expected[photo] = json.loads(text)

    assert {status for status, _ in answers} == {200}
    for photo, (_, answer) in zip(photos, answers, strict=True):
        reference = expected[photo]
        assert answer.keys() == reference.keys()
        assert answer["model_version"] == reference["model_version"] == "test-1"
        assert answer["max_count"] == reference["max_count"]
        # Batched with different neighbours, each photo gets the handler's count.
        assert answer["count"] == reference["count"]
        assert len(answer["probabilities"]) == len(reference["probabilities"]) == 6
        assert answer["probabilities"] == pytest.approx(
            reference["probabilities"], abs=FAST_PATH_TOLERANCE
        )


def test_bad_requests_get_their_status_and_message(server):
    url, _ = server
    status, answer = request(f"{url}/invocations", sample_photo()[:3000])
    assert status == 400
    assert answer["error"].startswith("corrupt or truncated JPEG image: image file is truncated")
    assert request(f"{url}/invocations", b"hello", "text/plain")[0] == 415
    status, answer = request(
        f"{url}/invocations", json.dumps({"instances": [{"image_base64": "AAAA"}]}).encode(),
        "application/json",
    )  # fmt: skip
    assert status == 200
    assert answer["predictions"] == [
        {"error": "instances[0]: not a JPEG or PNG image", "status": 415}
    ]


def test_a_busy_port_is_reported_clearly(server, model_artifact):
    _, port = server
    result = subprocess.run(
        serve_command(model_artifact, port),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr


def test_serve_without_a_model_says_what_to_do(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bincheck.cli", "serve", "--model", str(tmp_path / "none.tar.gz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no model at" in result.stderr


def test_images_of_concurrent_requests_share_network_calls(model_artifact):
    import asyncio

    from bincheck.inference_server import Batcher
    from model.artifact import read_artifact
    from model.predictor import Predictor

    model, card = read_artifact(model_artifact)
    predictor = Predictor(model, card)
    images = [predictor.decode(sample_photo(image_id)) for image_id in SAMPLE_COUNTS]
    alone = [predictor.predict([image])[0] for image in images]

    async def together():
        batcher = Batcher(predictor, max_batch=4, window_s=0.05)
        worker = asyncio.create_task(batcher.run())
        answers = await asyncio.gather(*(batcher.predict([image]) for image in images))
        worker.cancel()
        return batcher.batch_sizes, [answer for [answer] in answers]

    sizes, answers = asyncio.run(together())

    assert sizes == [4, 3]  # 7 requests, at most 4 images per network call
    assert [a.count for a in answers] == [a.count for a in alone]
    for a, b in zip(answers, alone, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)


@pytest.mark.parametrize("workers", [1, 2])
def test_network_workers_run_that_many_batches_at_once_each_on_its_own_threads(
    model_artifact, workers
):
    import asyncio
    import threading
    import time

    import torch

    from bincheck.inference_server import Batcher
    from model.artifact import read_artifact
    from model.predictor import Predictor

    model, card = read_artifact(model_artifact)
    predictor = Predictor(model, card)
    images = [predictor.decode(sample_photo(image_id)) for image_id in SAMPLE_COUNTS]
    alone = [predictor.predict([image])[0] for image in images]
    lock, running, seen = threading.Lock(), [0], {"overlap": 0, "threads": set()}

    class Watched:
        decodes_on_device = False

        def predict(self, batch):
            with lock:
                running[0] += 1
                seen["overlap"] = max(seen["overlap"], running[0])
                seen["threads"].add(torch.get_num_threads())
            time.sleep(0.2)  # long enough for the other worker to take the next batch
            try:
                return predictor.predict(batch)
            finally:
                with lock:
                    running[0] -= 1

    async def together():
        batcher = Batcher(Watched(), max_batch=2, window_s=0.01, workers=workers, threads=1)
        worker = asyncio.create_task(batcher.run())
        answers = await asyncio.gather(*(batcher.predict([image]) for image in images))
        worker.cancel()
        return [answer for [answer] in answers]

    answers = asyncio.run(together())

    assert seen["overlap"] == workers
    assert seen["threads"] == {1}
    assert [a.count for a in answers] == [a.count for a in alone]


def test_where_photos_are_decoded_on_the_device_requests_send_bytes_decoded_per_batch(
    model_artifact, monkeypatch
):
    """The GPU arrangement, run on the CPU: photos of concurrent requests reach the network
    worker as bytes and are decoded there together (``decode_batch``, nvJPEG on a GPU)."""
    import asyncio

    import aiohttp
    from aiohttp import web

    from bincheck.inference_server import create_app
    from model.artifact import read_artifact
    from model.predictor import Predictor

    model, card = read_artifact(model_artifact)
    reference = Predictor(model, card)
    photos = [sample_photo(image_id) for image_id in SAMPLE_COUNTS]
    truncated = sample_photo()[:4000]
    expected = [reference.predict([reference.decode(p)])[0] for p in photos]

    monkeypatch.setattr(Predictor, "decodes_on_device", property(lambda self: True))
    decoded_together = []
    decode_many = Predictor.decode_many

    def watched(self, items):
        decoded_together.append(len(items))
        return decode_many(self, items)

    monkeypatch.setattr(Predictor, "decode_many", watched)

    async def run():
        app = create_app(Predictor(model, card), max_batch=8, window_ms=50, workers=1)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}/invocations"

        async def post(session, body):
            async with session.post(url, data=body, headers={"Content-Type": "image/jpeg"}) as r:
                return r.status, await r.json()

        async with aiohttp.ClientSession() as session:
            answers = await asyncio.gather(*(post(session, b) for b in [*photos, truncated]))
        await runner.cleanup()
        return answers

    answers = asyncio.run(run())

    assert max(decoded_together) > 1  # several requests' photos in one decode call
    assert sum(decoded_together) == len(photos) + 1
    *good, bad = answers
    assert bad[0] == 400
    assert bad[1]["error"].startswith("corrupt or truncated JPEG image")
    for (status, got), want in zip(good, expected, strict=True):
        assert status == 200
        assert got["count"] == want.count
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-5)


def runtime_client(url: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def test_invoke_endpoint_answers_a_boto3_client_as_sagemaker_runtime_would(server):
    from botocore.exceptions import ClientError

    url, _ = server
    runtime = runtime_client(url)
    answer = runtime.invoke_endpoint(
        EndpointName="bincheck-counter", ContentType="image/jpeg", Body=sample_photo()
    )
    assert answer["ContentType"].startswith("application/json")
    assert json.loads(answer["Body"].read())["model_version"] == "test-1"

    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(
            EndpointName="bincheck-counter", ContentType="image/jpeg", Body=b"not a photo"
        )
    error = refused.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 415  # not JPEG or PNG: the photo is at fault
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424

    with pytest.raises(ClientError) as unknown:
        runtime.invoke_endpoint(EndpointName="other", ContentType="image/jpeg", Body=b"x")
    assert unknown.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint other not found" in unknown.value.response["Error"]["Message"]


def test_injected_faults_are_the_ways_a_real_endpoint_fails():
    from bincheck.inference_server import Runtime

    assert Runtime("e", fault_rate=0).fault() is None
    runtime = Runtime("e", fault_rate=1, seed=1)
    faults = [runtime.fault() for _ in range(60)]
    kinds = {(f.status, f.headers["x-amzn-ErrorType"]) for f in faults}
    assert kinds == {(400, "ThrottlingException"), (503, "ServiceUnavailable"), (424, "ModelError")}
    assert sum(runtime.counts.values()) == 60
    with pytest.raises(ValueError, match="fault_rate"):
        Runtime("e", fault_rate=1.5)
