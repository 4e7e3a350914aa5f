"""``bincheck endpoint load`` against a real local endpoint that fails 30% of its calls."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bincheck.cli import main
from bincheck.load.driver import error_kind
from bincheck.load.figures import StepFigures, capacity, summarize
from contract.decision import InvalidPrediction
from contract.names import ENDPOINT_NAME
from lambdas.checker.adapters.endpoint import ImageRejected

from .conftest import SAMPLES

STEP_KEYS = {
    "concurrency", "duration_s", "calls", "ok", "invocations_per_minute",
    "p50_ms", "p95_ms", "p99_ms", "errors",
}  # fmt: skip
# /stats names each injected fault; the load command names it as the caller sees it.
INJECTED = {
    "fault_ThrottlingException": "ThrottlingException",
    "fault_ServiceUnavailable": "ServiceUnavailable",
    "fault_ModelError": "ModelError 500",
}


@pytest.fixture(scope="module")
def endpoint_url(model_artifact) -> Iterator[str]:
    """``bincheck serve``'s application in a thread of this process: its ``Runtime`` takes a
    seed (the command has no option for it), so the faults are drawn in a fixed order."""
    from aiohttp import web

    from bincheck.inference_server import Runtime, create_app, load_predictor

    app = create_app(
        load_predictor(model_artifact),
        runtime=Runtime(ENDPOINT_NAME, fault_rate=0.3, seed=0),
        workers=1,
    )
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, listening).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=30)
    loop.close()


def server_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as response:
        return json.loads(response.read())


def load(url: str, *extra: str) -> int:
    return main(["endpoint", "load", "--url", url, "--data", str(SAMPLES), *extra])


def test_load_ramp_counts_calls_errors_and_latency_as_the_endpoint_saw_them(
    endpoint_url, tmp_path, capsys
):
    before = server_stats(endpoint_url)
    out, plot = tmp_path / "load.json", tmp_path / "load.png"

    exit_code = load(
        endpoint_url,
        *("--concurrency", "1", "2", "--duration-s", "1", "--max-p99-ms", "5000"),
        *("--out", str(out), "--plot", str(plot)),
    )

    printed = capsys.readouterr().out
    assert exit_code == 0
    run = json.loads(out.read_text())
    assert run.keys() == {
        "endpoint", "url", "input", "photos", "max_p99_ms", "started_at", "steps", "capacity"
    }  # fmt: skip
    assert (run["endpoint"], run["url"], run["input"], run["photos"], run["max_p99_ms"]) == (
        ENDPOINT_NAME,
        endpoint_url,
        "bytes",
        7,
        5000.0,
    )
    assert run["started_at"].endswith("Z")
    assert [step["concurrency"] for step in run["steps"]] == [1, 2]
    for step in run["steps"]:
        assert step.keys() == STEP_KEYS
        assert step["calls"] == step["ok"] + sum(step["errors"].values())
        assert step["ok"] > 0
        assert 1 <= step["duration_s"] < 3
        assert step["invocations_per_minute"] == pytest.approx(
            step["ok"] * 60 / step["duration_s"], abs=0.1
        )
        assert step["p50_ms"] <= step["p95_ms"] <= step["p99_ms"]
        errors = ", ".join(f"{kind} {n}" for kind, n in sorted(step["errors"].items()))
        assert (
            f"concurrency {step['concurrency']}: {step['calls']} calls, {step['ok']} ok in "
            f"{step['duration_s']:.1f} s, {step['invocations_per_minute']:.1f} invocations/min, "
            f"p50/p95/p99 {step['p50_ms']:.1f}/{step['p95_ms']:.1f}/{step['p99_ms']:.1f} ms, "
            f"errors: {errors}"
        ) in printed.splitlines()

    # Retries are off: the endpoint saw exactly the calls counted, and each injected fault
    # was counted once, under the name a caller sees.
    after = server_stats(endpoint_url)
    seen = {n: after[n] - before.get(n, 0) for n in after if n != "batch_sizes"}
    total = {
        kind: sum(s["errors"].get(kind, 0) for s in run["steps"]) for kind in INJECTED.values()
    }
    assert seen["invocations"] == sum(step["calls"] for step in run["steps"])
    assert total == {INJECTED[name]: seen[name] for name in INJECTED}
    assert min(total.values()) > 0
    assert all(set(step["errors"]) <= set(INJECTED.values()) for step in run["steps"])

    best = max(run["steps"], key=lambda s: s["invocations_per_minute"])
    assert best["p99_ms"] <= 5000
    assert run["capacity"] == {
        "concurrency": best["concurrency"],
        "invocations_per_minute": best["invocations_per_minute"],
        "p99_ms": best["p99_ms"],
    }
    assert printed.splitlines()[-3:] == [
        f"capacity: {best['invocations_per_minute']:.1f} invocations/min at concurrency "
        f"{best['concurrency']} (p99 {best['p99_ms']:.1f} ms <= 5000 ms); as the auto "
        "scaling target, x0.5 (AWS's starting safety factor): invocations_per_instance "
        f"{best['invocations_per_minute'] * 0.5:.0f}",
        f"figures: {out}",
        f"plot: {plot}",
    ]
    header = printed.splitlines()[-6]
    assert header.split() == [
        "concurrency", "calls", "ok", "invocations/min", "p50", "ms", "p95", "ms", "p99", "ms",
        "errors",
    ]  # fmt: skip
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attempts_turns_botocore_retries_on(endpoint_url, no_backoff, capsys):
    before = server_stats(endpoint_url)

    exit_code = load(
        endpoint_url,
        *("--concurrency", "1", "--duration-s", "30", "--max-calls", "40", "--attempts", "3"),
    )

    assert exit_code == 0
    assert "concurrency 1: 40 calls" in capsys.readouterr().out
    seen = server_stats(endpoint_url)["invocations"] - before["invocations"]
    assert seen > 40  # throttling and 503s were retried; model errors are not retryable


def test_s3_uri_mode_uploads_the_photos_once_and_names_them(
    endpoint_url, resources, tmp_path, capsys
):
    from model import inference

    inference._s3.cache_clear()  # the endpoint reads the bucket through moto too
    out = tmp_path / "load.json"
    try:
        exit_code = load(
            endpoint_url,
            *("--input", "s3_uri", "--s3-prefix", f"s3://{resources.names.bucket}/load"),
            *("--concurrency", "2", "--duration-s", "30", "--max-calls", "30"),
            *("--out", str(out)),
        )
    finally:
        inference._s3.cache_clear()

    assert exit_code == 0
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.names.bucket, Prefix="load/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
        f"load/{path.name}" for path in (SAMPLES / "images").glob("*.jpg")
    )
    [step] = json.loads(out.read_text())["steps"]
    assert step["calls"] == 30
    assert step["ok"] > 0
    assert "ModelError 4xx" not in step["errors"]  # every URI named an uploaded photo
    assert "upload" in capsys.readouterr().err


def test_an_endpoint_that_cannot_be_reached_counts_connection_errors(tmp_path, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"

    exit_code = load(
        closed,
        *("--concurrency", "2", "--duration-s", "30", "--max-calls", "6"),
        *("--out", str(tmp_path / "load.json"), "--plot", str(tmp_path / "load.png")),
    )

    assert exit_code == 1  # no call succeeded
    run = json.loads((tmp_path / "load.json").read_text())
    assert run["steps"][0] | {"duration_s": None} == {
        "concurrency": 2,
        "duration_s": None,
        "calls": 6,
        "ok": 0,
        "invocations_per_minute": 0.0,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "errors": {"connection": 6},
    }
    assert run["capacity"] is None
    assert run["max_p99_ms"] == 500.0  # the endpoint latency alarm's default
    assert "capacity: no step kept its p99 within 500 ms" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--concurrency", "1", "0"], "--concurrency must be at least 1, got [1, 0]"),
        (["--duration-s", "0"], "--duration-s must be positive, got 0"),
        (["--max-calls", "-5"], "--max-calls must be positive, got -5"),
        (["--photos", "0"], "--photos must be positive, got 0"),
        (
            ["--input", "s3_uri"],
            "--input s3_uri needs --s3-prefix s3://BUCKET/PREFIX/ to upload to",
        ),
        (["--s3-prefix", "s3://b/p/"], "--s3-prefix is for --input s3_uri"),
        (
            ["--input", "s3_uri", "--s3-prefix", "bucket/p"],
            "--s3-prefix must look like s3://BUCKET/PREFIX/, got bucket/p",
        ),
        (
            ["--url", "127.0.0.1:8085"],
            "--url must start with http:// or https://, got 127.0.0.1:8085",
        ),
        (["--plot", "load.jpg"], "--plot must name a .png file, got load.jpg"),
    ],
)
def test_bad_arguments_are_refused(arguments, message, capsys):
    exit_code = main(["endpoint", "load", "--data", str(SAMPLES), *arguments])

    out, err = capsys.readouterr()
    assert (exit_code, out, err) == (2, "", f"bincheck: error: {message}\n")


def test_a_missing_or_empty_data_folder_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "labels.csv").write_text("image_id,count\n00001,3\n")  # no such photo

    assert main(["endpoint", "load", "--data", str(tmp_path / "nowhere")]) == 2
    assert main(["endpoint", "load", "--data", str(empty)]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"bincheck: error: no data folder at {tmp_path / 'nowhere'}",
        f"bincheck: error: {empty} has no photos: no id in labels.csv has its images/<id>.jpg",
    ]


def test_step_figures_on_hand_computed_numbers():
    step = summarize(
        concurrency=4,
        wall_s=30.0,
        latencies_ms=[40.0, 10.0, 30.0, 20.0],
        errors={"ThrottlingException": 2, "ModelError 500": 1},
    )
    # Inclusive (linear) percentiles of 10, 20, 30, 40: rank (n - 1) * q from the lowest.
    assert step == StepFigures(
        concurrency=4,
        duration_s=30.0,
        calls=7,
        ok=4,
        invocations_per_minute=8.0,  # 4 ok calls in half a minute
        p50_ms=25.0,  # rank 1.5
        p95_ms=38.5,  # rank 2.85
        p99_ms=39.7,  # rank 2.97
        errors={"ModelError 500": 1, "ThrottlingException": 2},
    )
    hundred_and_one = summarize(
        concurrency=1, wall_s=60.0, latencies_ms=[float(i) for i in range(1, 102)], errors={}
    )
    assert (hundred_and_one.p50_ms, hundred_and_one.p95_ms, hundred_and_one.p99_ms) == (
        51.0,
        96.0,
        100.0,
    )
    assert summarize(concurrency=1, wall_s=2.0, latencies_ms=[12.5], errors={}).p99_ms == 12.5
    failed = summarize(concurrency=1, wall_s=2.0, latencies_ms=[], errors={"timeout": 3})
    assert (failed.calls, failed.ok, failed.invocations_per_minute, failed.p50_ms) == (
        3,
        0,
        0.0,
        None,
    )


def test_capacity_is_the_best_rate_whose_p99_is_within_the_limit():
    def step(concurrency: int, per_minute: float, p99_ms: float | None) -> StepFigures:
        return StepFigures(concurrency, 30.0, 1, 1, per_minute, None, None, p99_ms)

    steps = [step(1, 100, 50), step(4, 300, 400), step(8, 300, 450), step(16, 350, 700)]
    steps.append(step(32, 0, None))  # nothing succeeded

    assert capacity(steps, 500).concurrency == 4  # 8 is no faster, only slower
    assert capacity(steps, 1000).concurrency == 16
    assert capacity(steps, 40) is None


def test_errors_are_counted_by_kind():
    def client_error(code: str, status: int, **extra) -> ClientError:
        response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response | extra, "InvokeEndpoint")

    assert error_kind(client_error("ThrottlingException", 400)) == "ThrottlingException"
    assert error_kind(client_error("ServiceUnavailable", 503)) == "ServiceUnavailable"
    assert error_kind(client_error("ModelError", 424, OriginalStatusCode=500)) == "ModelError 500"
    assert error_kind(ImageRejected("unsupported image format")) == "ModelError 4xx"
    assert error_kind(InvalidPrediction("count outside 0..5")) == "InvalidPrediction"
    assert error_kind(ReadTimeoutError(endpoint_url="http://x")) == "timeout"
    assert error_kind(ConnectTimeoutError(endpoint_url="http://x")) == "timeout"
    assert error_kind(EndpointConnectionError(endpoint_url="http://x")) == "connection"
    assert error_kind(RuntimeError("a bug")) is None  # stops the run instead
