"""``bincheck serve``: the SageMaker container contract on a local port, with batching.

``GET /ping`` and ``POST /invocations`` call the same ``input_fn`` and ``output_fn`` as the
container, and the predictor's decode and predict steps that ``predict_fn`` chains. What the
server adds: requests are decoded on a thread pool in parallel, and the images of requests
that arrive together go through the network as one batch.

``POST /endpoints/<name>/invocations`` is SageMaker Runtime's ``InvokeEndpoint`` in front of
that container, so an unchanged boto3 client reaches it with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://host:port``: the container's 4xx and 5xx come
back as ``ModelError`` (HTTP 424 with ``OriginalStatusCode``), an unknown endpoint name as
``ValidationError``. ``fault_rate`` makes that share of runtime calls fail the ways a real
endpoint does (throttling, 503, a model 500), for resilience tests; ``GET /stats`` counts
them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from aiohttp import web

from contract.names import ENDPOINT_NAME
from model.artifact import read_artifact
from model.images import DEFAULT_MAX_BYTES, BadInput
from model.inference import MAX_INSTANCES, gather, input_fn, output_fn, readable_photos
from model.predictor import Prediction, Predictor

log = logging.getLogger(__name__)

PREDICTOR = web.AppKey("predictor", Predictor)
BATCHER = web.AppKey("batcher", "Batcher")
POOL = web.AppKey("pool", ThreadPoolExecutor)
RUNTIME = web.AppKey("runtime", "Runtime")


class Batcher:
    """Collects images from concurrent requests; one network call per batch.

    No request waits for a batch to fill: when a network worker is free, whatever has
    queued up while the workers were busy goes in its next batch (up to ``max_batch``), plus
    what arrives within ``window_s`` after the first.

    ``workers`` batches can be in the network at once, each on its own thread with
    ``threads`` intra-op threads. On a CPU, one worker per core with one thread each beats
    one worker spreading each batch over every core: a parallel region waits for its
    slowest thread, and the decode threads keep stealing cores from it.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        max_batch: int,
        window_s: float,
        workers: int = 1,
        threads: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.predictor = predictor
        self.max_batch = max_batch
        self.window_s = window_s
        self.workers = workers
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()
        self.network = ThreadPoolExecutor(
            workers,
            thread_name_prefix="bincheck-network",
            initializer=torch.set_num_threads if threads else None,
            initargs=(threads,) if threads else (),
        )
        self.batch_sizes: list[int] = []

    async def predict(self, items: list[Any]) -> list[Prediction | BadInput]:
        """Decoded images (or, where the predictor decodes on its device, photo bytes) -> a
        prediction each; a refusal (``BadInput``) stays in its place without queueing."""
        loop = asyncio.get_running_loop()
        futures = []
        for item in items:
            future = loop.create_future()
            if isinstance(item, BadInput):
                future.set_result(item)
            else:
                self.queue.put_nowait((item, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def run(self) -> None:
        free = asyncio.Semaphore(self.workers)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                await free.acquire()
                batch = await self._collect()
                task = asyncio.create_task(self._run_batch(batch))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: free.release())
        finally:
            for task in running:
                task.cancel()

    async def _collect(self) -> list[tuple[Any, asyncio.Future[Any]]]:
        loop = asyncio.get_running_loop()
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
        return batch

    async def _run_batch(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        loop = asyncio.get_running_loop()
        images = [image for image, _ in batch]
        try:
            predictions = await loop.run_in_executor(self.network, self._infer, images)
        except Exception as error:  # the network failed: every waiting request learns it
            log.exception("network failed on a batch of %d", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), prediction in zip(batch, predictions, strict=True):
            if not future.done():
                future.set_result(prediction)

    def _infer(self, items: list[Any]) -> list[Prediction | BadInput]:
        if not self.predictor.decodes_on_device:
            return self.predictor.predict(items)
        return self.predictor.predict_decoded(self.predictor.decode_many(items))


class Runtime:
    """What SageMaker Runtime adds in front of the container: one endpoint name, errors in
    its wire format, and (for tests) faults drawn at ``fault_rate``."""

    # What callers of a real endpoint meet: throttling and 503s (botocore retries both),
    # and the container failing (a ModelError, which the caller must handle).
    FAULTS = (
        (400, "ThrottlingException", "Rate exceeded (injected fault)", None),
        (503, "ServiceUnavailable", "Service unavailable (injected fault)", None),
        (424, "ModelError", "Received server error (500) from primary (injected fault)", 500),
    )

    def __init__(self, endpoint_name: str, *, fault_rate: float = 0.0, seed: int | None = None):
        if not 0 <= fault_rate <= 1:
            raise ValueError("fault_rate must be within 0..1")
        self.endpoint_name = endpoint_name
        self.fault_rate = fault_rate
        self.random = random.Random(seed)  # noqa: S311 (fault injection, not secrets)
        self.counts: Counter[str] = Counter()

    def fault(self) -> web.Response | None:
        if not self.fault_rate or self.random.random() >= self.fault_rate:
            return None
        status, code, message, original = self.random.choice(self.FAULTS)
        self.counts[f"fault_{code}"] += 1
        return error_response(status, code, message, original_status=original)


def error_response(
    status: int, code: str, message: str, *, original_status: int | None = None
) -> web.Response:
    body: dict[str, object] = {"message": message}
    if original_status is not None:
        body |= {"OriginalStatusCode": original_status, "OriginalMessage": message}
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={"x-amzn-ErrorType": code},
    )


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
        photos = readable_photos(parsed)
        items: list[Any] = list(photos.values())
        if not predictor.decodes_on_device:  # else the batch is decoded on its device
            items = await loop.run_in_executor(pool, predictor.decode_many, items)
        outcomes = await request.app[BATCHER].predict(items)
        answers = gather(parsed, dict(zip(photos, outcomes, strict=True)))
        text, content_type = output_fn(answers, request.headers.get("Accept"))
    except BadInput as error:
        return web.json_response({"error": error.message}, status=error.status)
    except Exception as error:  # what the inference toolkit answers to a handler's crash
        log.exception("invocation failed")
        return web.json_response({"error": f"{type(error).__name__}: {error}"}, status=500)
    return web.Response(text=text, content_type=content_type)


async def invoke_endpoint(request: web.Request) -> web.Response:
    """``InvokeEndpoint``: the container's answer, in SageMaker Runtime's wire format."""
    runtime = request.app[RUNTIME]
    runtime.counts["invocations"] += 1
    name = request.match_info["name"]
    if name != runtime.endpoint_name:
        return error_response(400, "ValidationError", f"Endpoint {name} not found.")
    if fault := runtime.fault():
        return fault
    response = await invocations(request)
    if response.status >= 400:
        runtime.counts["model_errors"] += 1
        message = json.loads(response.text)["error"]
        return error_response(
            424,
            "ModelError",
            f'Received client error ({response.status}) from primary with message "{message}".',
            original_status=response.status,
        )
    response.headers["x-Amzn-Invoked-Production-Variant"] = "AllTraffic"
    return response


async def stats(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response(
        {"batch_sizes": Counter(request.app[BATCHER].batch_sizes), **runtime.counts}
    )


def create_app(
    predictor: Predictor,
    *,
    max_batch: int = 32,
    window_ms: float = 2.0,
    threads: int | None = None,
    workers: int | None = None,
    runtime: Runtime | None = None,
) -> web.Application:
    """``threads`` decode photos; ``workers`` run batches through the network at once
    (default: one per core on a CPU, each with one intra-op thread; one on a GPU)."""
    # Room for a batch request of base64 photos; single photos are limited in input_fn.
    app = web.Application(client_max_size=2 * DEFAULT_MAX_BYTES + MAX_INSTANCES * 1024 * 1024)
    app[PREDICTOR] = predictor
    cores = torch.get_num_threads()
    on_gpu = predictor.device.type == "cuda"
    workers = workers or (1 if on_gpu else cores)
    app[BATCHER] = Batcher(
        predictor,
        max_batch=max_batch,
        window_s=window_ms / 1000,
        workers=workers,
        threads=None if on_gpu else max(1, cores // workers),
    )
    # Decoding resizes with torch ops: one intra-op thread each, or they crowd the network.
    app[POOL] = ThreadPoolExecutor(
        threads or (os.cpu_count() or 2) + 2,
        "bincheck-decode",
        initializer=torch.set_num_threads,
        initargs=(1,),
    )
    app[RUNTIME] = runtime or Runtime(ENDPOINT_NAME)
    app.router.add_get("/ping", ping)
    app.router.add_post("/invocations", invocations)
    app.router.add_post("/endpoints/{name}/invocations", invoke_endpoint)
    app.router.add_get("/stats", stats)

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


def serve(
    model_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    fast: bool = True,
    max_batch: int = 32,
    window_ms: float = 2.0,
    endpoint_name: str = ENDPOINT_NAME,
    fault_rate: float = 0.0,
    workers: int | None = None,
) -> None:
    runtime = Runtime(endpoint_name, fault_rate=fault_rate)
    predictor = load_predictor(model_path, fast=fast)
    card = predictor.card
    app = create_app(
        predictor, max_batch=max_batch, window_ms=window_ms, workers=workers, runtime=runtime
    )
    print(
        f"serving {card.version} ({card.backbone}, K={card.max_count}, input "
        f"{card.input_size[0]}x{card.input_size[1]}, {'fast' if fast else 'plain'} path, "
        f"{predictor.folded_norms} BatchNorms folded, "
        f"{predictor.precision} on {predictor.device}, {app[BATCHER].workers} network "
        f"worker(s)) at http://{host}:{port}, and as "
        f"SageMaker endpoint {endpoint_name!r}"
        + (f" failing {fault_rate:.0%} of calls on purpose" if fault_rate else ""),
        flush=True,
    )
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        access_log=None,
    )
