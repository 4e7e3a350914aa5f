"""The checker function, run locally: worker processes fed from the queue as Lambda would.

Each worker is one execution environment: its own process, the unchanged handler module
(``lambdas/checker/handler.py``) loaded once, and an ``SqsEventSource`` receiving batches,
invoking the handler and settling messages (partial batch failures, redelivery, SQS's own
redrive to the DLQ). Workers run concurrently, like Lambda's concurrent instances, and
write their logs (and metric lines, as CloudWatch would receive them) to one log file.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 10
    function_timeout_s: float = 60.0
    # Lambda leaves a failed message invisible for the queue's visibility timeout (six
    # function timeouts) before it comes back; locally that wait is this many seconds.
    retry_delay_s: int = 2


class CheckerWorkers:
    def __init__(
        self,
        queue_url: str,
        *,
        environment: dict[str, str],
        log_path: Path,
        count: int = 4,
        options: WorkerOptions = WorkerOptions(),
    ) -> None:
        if count < 1:
            raise ValueError("need at least one checker worker")
        self.queue_url = queue_url
        self.environment = environment
        self.log_path = log_path
        self.count = count
        self.options = options
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._stop = context.Event()
        self._receive = context.Lock()
        self._received = context.Value("q", 0)
        self._failed = context.Value("q", 0)
        self._processes = [
            context.Process(
                target=_work,
                args=(
                    queue_url,
                    environment,
                    options,
                    log_path,
                    self._stop,
                    self._receive,
                    self._received,
                    self._failed,
                ),
                name=f"bincheck-checker-{i}",
                daemon=True,
            )
            for i in range(count)
        ]

    @property
    def received(self) -> int:
        """Messages handed to the handler so far (redeliveries counted again)."""
        return self._received.value

    @property
    def failed(self) -> int:
        """Of those, the ones reported as failures (they return to the queue)."""
        return self._failed.value

    def start(self) -> None:
        for process in self._processes:
            process.start()

    def alive(self) -> int:
        return sum(process.is_alive() for process in self._processes)

    def stop(self, timeout_s: float = 20) -> None:
        """Let each worker finish its batch, then stop; kill what does not."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for process in self._processes:
            if process.pid is None:
                continue
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def _work(
    queue_url: str,
    environment: dict[str, str],
    options: WorkerOptions,
    log_path: Path,
    stop: Any,
    receive_lock: Any,
    received: Any,
    failed: Any,
) -> None:
    # The stack stops workers in order on Ctrl-C; the signal itself is not theirs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.update(environment)
    logging.basicConfig(level=logging.WARNING)

    import boto3

    from lambdas.checker import handler

    from .event_source import SqsEventSource

    source = SqsEventSource(
        OneReceiveAtATime(boto3.client("sqs"), receive_lock),
        queue_url,
        handler.lambda_handler,
        batch_size=options.batch_size,
        wait_time_s=1,
        retry_delay_s=options.retry_delay_s,
        function_timeout_s=options.function_timeout_s,
    )
    while not stop.is_set():
        try:
            result = source.poll()
        except Exception:  # the emulation going away at shutdown, a network blip
            logging.exception("polling %s failed; trying again in a second", queue_url)
            time.sleep(1)
            continue
        with received.get_lock():
            received.value += result.received
        with failed.get_lock():
            failed.value += result.failed


class OneReceiveAtATime:
    """An SQS client whose ReceiveMessage calls wait for each other across the workers.

    moto's ReceiveMessage is not safe under concurrent callers: two of them moving the same
    message to the DLQ make one fail with a 500 after it has already hidden its batch,
    which then waits out the visibility timeout. Lambda's pollers against SQS need no such
    care; the handler invocations, which are the work, still run concurrently.
    """

    def __init__(self, sqs: Any, lock: Any) -> None:
        self._sqs = sqs
        self._lock = lock

    def receive_message(self, **request: Any) -> dict:
        with self._lock:
            return self._sqs.receive_message(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)
