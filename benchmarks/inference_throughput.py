"""Inference benchmark: the container's per-request path against ``bincheck serve``.

In one process, on the same photos and the same model:
(a) the handler as the AWS container calls it: one photo per request, ``input_fn`` ->
    ``predict_fn`` -> ``output_fn`` on the plain path (full decode, float32);
(b) ``bincheck serve`` (fast path, batching) on a local port, driven by concurrent HTTP
    clients.
Prints photos/s, p50 and p99 latency of ``--rounds`` rounds of each, the ratio of their
medians, and how far (b)'s answers are from (a)'s (count disagreements, largest
probability difference).

    .venv/bin/python benchmarks/inference_throughput.py   # the shipped default model
    .venv/bin/python benchmarks/inference_throughput.py --model model.tar.gz
    # (b) only, for two models, rounds interleaved: what one costs to serve against the other
    .venv/bin/python benchmarks/inference_throughput.py --model A.tar.gz --against B.tar.gz
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import torch
from aiohttp import web

from bincheck.inference_server import BATCHER, create_app, load_predictor
from model.inference import input_fn, model_fn, output_fn, predict_fn

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_MODEL = REPO / "model" / "default" / "model.tar.gz"


def photos(folder: Path, count: int) -> list[bytes]:
    files = sorted((folder / "images").glob("*.jpg"))
    if not files:
        sys.exit(f"no photos in {folder / 'images'}")
    return [files[i % len(files)].read_bytes() for i in range(count)]


def per_request(model_path: Path, images: list[bytes]) -> tuple[list[float], list[str], float]:
    os.environ["BINCHECK_FAST_PATH"] = "0"
    predictor = model_fn(str(model_path))
    answers, latencies = [], []
    started = time.perf_counter()
    for data in images:
        t = time.perf_counter()
        body, _ = output_fn(predict_fn(input_fn(data, "image/jpeg"), predictor), "application/json")
        latencies.append(time.perf_counter() - t)
        answers.append(body)
    return latencies, answers, time.perf_counter() - started


async def served(
    model_path: Path, images: list[bytes], clients: int, workers: int | None = None
) -> tuple[list[float], list[str], float, list[int]]:
    predictor = load_predictor(model_path, fast=True)
    app = create_app(predictor, workers=workers)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/invocations"
    answers: list[str] = [""] * len(images)
    latencies: list[float] = []
    next_photo = iter(range(len(images)))

    async def client(session: aiohttp.ClientSession) -> None:
        for i in next_photo:
            t = time.perf_counter()
            async with session.post(
                url, data=images[i], headers={"Content-Type": "image/jpeg"}
            ) as response:
                answers[i] = await response.text()
                response.raise_for_status()
            latencies.append(time.perf_counter() - t)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    batch_sizes = app[BATCHER].batch_sizes
    await runner.cleanup()
    return latencies, answers, elapsed, batch_sizes


def summary(name: str, latencies: list[float], elapsed: float) -> float:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
    rate = len(latencies) / elapsed
    print(f"  {name:<44} {rate:8.1f} {p50:9.1f} {p99:9.1f}")
    return rate


def agreement(plain: list[str], fast: list[str]) -> tuple[int, float]:
    import json

    a = [json.loads(x) for x in plain]
    b = [json.loads(x) for x in fast]
    flips = sum(x["count"] != y["count"] for x, y in zip(a, b, strict=True))
    diff = max(
        abs(p - q)
        for x, y in zip(a, b, strict=True)
        for p, q in zip(x["probabilities"], y["probabilities"], strict=True)
    )
    return flips, diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model.tar.gz")
    parser.add_argument("--photos", type=Path, default=SHARED / "data" / "abid")
    parser.add_argument("--count", type=int, default=400, help="photos per path")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument(
        "--workers", type=int, help="bincheck serve --workers (default: one per core on a CPU)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each path; the medians are compared"
    )
    parser.add_argument(
        "--against", type=Path, help="a second model: (b) for both, rounds interleaved"
    )
    args = parser.parse_args()
    if not (args.photos / "images").is_dir():
        args.photos = REPO / "bincheck" / "samples"
    images = photos(args.photos, args.count)
    print(
        f"{len(images)} photos from {args.photos}, model {args.model.name}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, cuda={torch.cuda.is_available()}"
    )
    print(f"\n  {'path, round':<44} {'photos/s':>8} {'p50 ms':>9} {'p99 ms':>9}")
    if args.against:
        return compare_served(args, images)
    # Every round of (a) runs before any of (b): (b)'s large batches leave the allocator
    # holding big free blocks, which would make a later (a) faster than the container,
    # which only ever sees one photo at a time, would be.
    a_rates = []
    for round_ in range(1, args.rounds + 1):
        a_lat, a_answers, a_time = per_request(args.model, images)
        a_rates.append(summary(f"(a) per-request handler, plain path, {round_}", a_lat, a_time))
    b_rates = []
    for round_ in range(1, args.rounds + 1):
        b_lat, b_answers, b_time, sizes = asyncio.run(
            served(args.model, images, args.clients, args.workers)
        )
        name = f"(b) bincheck serve, {args.clients} clients, {round_}"
        b_rates.append(summary(name, b_lat, b_time))
    a_rate, b_rate = statistics.median(a_rates), statistics.median(b_rates)
    print(
        f"\n  median photos/s: (a) {a_rate:.1f}, (b) {b_rate:.1f}; "
        f"ratio (b)/(a): {b_rate / a_rate:.2f}x"
    )
    print(
        f"  (b)'s batches: {len(sizes)}, mean size {statistics.mean(sizes):.1f}, max {max(sizes)}"
    )
    flips, diff = agreement(a_answers, b_answers)
    print(
        f"  (b) vs (a): {flips} of {len(images)} counts differ, "
        f"largest probability difference {diff:.4f}"
    )


def compare_served(args: argparse.Namespace, images: list[bytes]) -> None:
    """``bincheck serve`` of ``--model`` and of ``--against``, round by round in turn."""
    rates: dict[Path, list[float]] = {args.model: [], args.against: []}
    for round_ in range(1, args.rounds + 1):
        for path, model_rates in rates.items():
            latencies, _, elapsed, _ = asyncio.run(served(path, images, args.clients, args.workers))
            name = f"(b) {path.parent.name}/{path.name}, {round_}"
            model_rates.append(summary(name[:44], latencies, elapsed))
    mine, theirs = (statistics.median(r) for r in rates.values())
    print(
        f"\n  median photos/s: {args.model} {mine:.1f}, {args.against} {theirs:.1f}; "
        f"ratio: {mine / theirs:.2f}x"
    )


if __name__ == "__main__":
    main()
