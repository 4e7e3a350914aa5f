"""The AWS emulation: moto in server mode on a local port, reached over HTTP like AWS.

Every process of the local stack (the checker workers, the model server, the demo, the AWS
CLI of a user) reaches it the same way: ``AWS_ENDPOINT_URL`` plus dummy credentials, which
boto3 and the AWS CLI honour without a code change.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import boto3

from .ports import ensure_free

REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from looking for real ones.
ACCESS_KEY = SECRET_KEY = "testing"  # noqa: S105


def session(region: str = REGION) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=region
    )


def client_environment(aws_url: str, *, region: str = REGION) -> dict[str, str]:
    """What a process needs to talk to the emulation instead of AWS."""
    return {
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


class AwsEmulation:
    """One per process: moto keeps its state (buckets, queues, tables) process-wide, so a
    second emulation would share the first one's resources."""

    _running: AwsEmulation | None = None

    def __init__(self, host: str = "127.0.0.1", port: int = 5055) -> None:
        self.host = host
        self.port = port
        self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if AwsEmulation._running is not None:
            raise RuntimeError(
                f"an AWS emulation already runs in this process at {AwsEmulation._running.url}"
            )
        # moto's server thread dies silently on a busy port, and start() then waits forever.
        ensure_free(self.host, self.port, "--aws-port")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        server = _moto_server_class()
        self._server = server(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        AwsEmulation._running = self

    def stop(self) -> None:
        """Stop serving and forget every resource, so the next emulation starts empty."""
        if self._server is None:
            return
        reset = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=30):  # noqa: S310 (our own server)
            pass
        self._server.stop()
        self._server = None
        AwsEmulation._running = None


# DynamoDB's writes that evaluate a condition or touch several items.
_DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


class AtomicDynamoDBWrites:
    """DynamoDB applies a conditional write atomically: of two reviewers settling one check
    at once, exactly one wins. moto evaluates the condition, then writes, and its server
    handles requests on concurrent threads, so both could pass; here its DynamoDB writes
    take turns (WSGI middleware, keyed on the ``X-Amz-Target`` header)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        service, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if service.startswith("DynamoDB_") and operation in _DYNAMODB_WRITES:
            with self._lock:
                return list(self.app(environ, start_response))  # the whole write, in turn
        return self.app(environ, start_response)


def _moto_server_class() -> type:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class MotoServer(ThreadedMotoServer):
        """moto's threaded server (as ``ThreadedMotoServer`` builds it) behind
        ``AtomicDynamoDBWrites``."""

        def _server_entry(self) -> None:
            app = AtomicDynamoDBWrites(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return MotoServer
