"""A Lambda function run locally for synchronous calls (an API behind API Gateway): worker
processes, each one execution environment with the unchanged handler module loaded once,
each running one invocation at a time as Lambda does; concurrent calls run in parallel on
different workers."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from .event_source import LocalLambdaContext

_handler: Callable[[dict, Any], Any] | None = None
_function_name = ""


class LambdaPool:
    def __init__(
        self,
        handler: str,
        *,
        function_name: str,
        environment: dict[str, str],
        log_path: Path,
        workers: int = 2,
    ) -> None:
        """``handler`` is ``module:function``, as Lambda's handler setting names it."""
        self.workers = workers
        self._warming: list[Future] = []
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded process
            initializer=_start,
            initargs=(handler, function_name, environment, str(log_path)),
        )

    def warm(self) -> None:
        """Start every worker, each loading the handler (Lambda's cold starts, paid now),
        without waiting: ``wait_warm`` does."""
        self._warming = [self._pool.submit(os.getpid) for _ in range(self.workers)]

    def wait_warm(self) -> None:
        wait(self._warming)
        for future in self._warming:
            future.result()  # a worker that failed to start says why

    def invoke(self, event: dict, timeout_s: float) -> Any:
        """The handler's result; ``TimeoutError`` past ``timeout_s``, the handler's exception
        if it raised."""
        return self._pool.submit(_invoke, event).result(timeout=timeout_s)

    def stop(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start(handler: str, function_name: str, environment: dict[str, str], log_path: str) -> None:
    global _handler, _function_name
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stack stops workers in order on Ctrl-C
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.update(environment)
    logging.basicConfig(level=logging.WARNING)
    module, _, function = handler.partition(":")
    _handler = getattr(importlib.import_module(module), function)
    _function_name = function_name


def _invoke(event: dict) -> Any:
    assert _handler is not None, "worker not started"
    try:
        return _handler(event, LocalLambdaContext(function_name=_function_name, timeout_s=30.0))
    except Exception:
        traceback.print_exc()  # as Lambda logs a function's uncaught error
        raise
