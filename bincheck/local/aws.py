"""The AWS emulation: moto in server mode on a local port, reached over HTTP like AWS.

Every process of the local stack (the checker workers, the model server, the demo, the AWS
CLI of a user) reaches it the same way: ``AWS_ENDPOINT_URL`` plus dummy credentials, which
boto3 and the AWS CLI honour without a code change.
"""

from __future__ import annotations

import logging
import urllib.request

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
        from moto.server import ThreadedMotoServer

        if AwsEmulation._running is not None:
            raise RuntimeError(
                f"an AWS emulation already runs in this process at {AwsEmulation._running.url}"
            )
        # moto's server thread dies silently on a busy port, and start() then waits forever.
        ensure_free(self.host, self.port, "--aws-port")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
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
