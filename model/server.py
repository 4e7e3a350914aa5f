"""``bincheck serve``: the SageMaker container contract on a local port, with batching.

``GET /ping`` and ``POST /invocations`` call the same ``input_fn`` and ``output_fn`` as the
container, and the predictor's decode and predict steps that ``predict_fn`` chains. What the
server adds: requests are decoded on a thread pool in parallel, and the images of requests
that arrive together go through the network as one batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from aiohttp import web

from .artifact import read_artifact
from .images import DEFAULT_MAX_BYTES, BadInput
from .inference import MAX_INSTANCES, answer, decode_all, input_fn, output_fn
from .predictor import Prediction, Predictor

log = logging.getLogger(__name__)

PREDICTOR = web.AppKey("predictor", Predictor)
BATCHER = web.AppKey("batcher", "Batcher")
POOL = web.AppKey("pool", ThreadPoolExecutor)


class Batcher:
    """Collects images from concurrent requests; one network call per batch.

    No request waits for a batch to fill: whatever has queued up while the network was
    busy goes in the next batch (up to ``max_batch``), plus what arrives within
    ``window_s`` after the first.
    """

    def __init__(self, predictor: Predictor, *, max_batch: int, window_s: float) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.window_s = window_s
        self.queue: asyncio.Queue[tuple[torch.Tensor, asyncio.Future[Prediction]]] = asyncio.Queue()
        self.network = ThreadPoolExecutor(1, thread_name_prefix="bincheck-network")
        self.batch_sizes: list[int] = []

    async def predict(self, images: list[torch.Tensor]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in images]
        for image, future in zip(images, futures, strict=True):
            self.queue.put_nowait((image, future))
        return list(await asyncio.gather(*futures))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_batch:
                if not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), remaining))
                except TimeoutError:
                    break
            self.batch_sizes.append(len(batch))
            images = [image for image, _ in batch]
            try:
                predictions = await loop.run_in_executor(
                    self.network, self.predictor.predict, images
                )
            except Exception as error:  # the network failed: every waiting request learns it
                log.exception("network failed on a batch of %d", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), prediction in zip(batch, predictions, strict=True):
                if not future.done():
                    future.set_result(prediction)


async def ping(request: web.Request) -> web.Response:
    return web.json_response(
        {"status": "healthy", "model_version": request.app[PREDICTOR].card.version}
    )


async def invocations(request: web.Request) -> web.Response:
    loop = asyncio.get_running_loop()
    predictor, pool = request.app[PREDICTOR], request.app[POOL]
    try:
        body = await request.read()
        parsed = await loop.run_in_executor(pool, input_fn, body, request.content_type)
        images = await loop.run_in_executor(pool, decode_all, parsed, predictor)
        predictions = await request.app[BATCHER].predict(list(images.values()))
        text, content_type = output_fn(
            answer(parsed, images, predictions), request.headers.get("Accept")
        )
    except BadInput as error:
        return web.json_response({"error": error.message}, status=error.status)
    return web.Response(text=text, content_type=content_type)


def create_app(
    predictor: Predictor, *, max_batch: int = 32, window_ms: float = 2.0, threads: int | None = None
) -> web.Application:
    # Room for a batch request of base64 photos; single photos are limited in input_fn.
    app = web.Application(client_max_size=2 * DEFAULT_MAX_BYTES + MAX_INSTANCES * 1024 * 1024)
    app[PREDICTOR] = predictor
    app[BATCHER] = Batcher(predictor, max_batch=max_batch, window_s=window_ms / 1000)
    app[POOL] = ThreadPoolExecutor(threads or (os.cpu_count() or 2) + 2, "bincheck-decode")
    app.router.add_get("/ping", ping)
    app.router.add_post("/invocations", invocations)

    async def batching(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(app[BATCHER].run())
        yield
        task.cancel()
        app[POOL].shutdown(wait=False, cancel_futures=True)
        app[BATCHER].network.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(batching)
    return app


def load_predictor(model_path: Path, *, fast: bool = True) -> Predictor:
    model, card = read_artifact(model_path)
    predictor = Predictor(model, card, fast=fast)
    # Warm up so the first request does not pay for lazy initialisation.
    blank = torch.zeros(3, *card.input_size, dtype=torch.uint8)
    predictor.predict([blank, blank])
    return predictor


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(
                f"cannot listen on {host}:{port} ({error.strerror}): is another "
                "server running there? Choose another with --port"
            ) from error


def serve(
    model_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    fast: bool = True,
    max_batch: int = 32,
    window_ms: float = 2.0,
) -> None:
    ensure_port_free(host, port)
    predictor = load_predictor(model_path, fast=fast)
    card = predictor.card
    print(
        f"serving {card.version} ({card.backbone}, K={card.max_count}, input "
        f"{card.input_size[0]}x{card.input_size[1]}, {'fast' if fast else 'plain'} path, "
        f"{predictor.precision} on {predictor.device}) at http://{host}:{port}",
        flush=True,
    )
    web.run_app(
        create_app(predictor, max_batch=max_batch, window_ms=window_ms),
        host=host,
        port=port,
        print=None,
        access_log=None,
    )
