"""The local endpoint: ``bincheck serve`` in its own process, as the SageMaker container.

It reads ``s3_uri`` photos from the AWS emulation and answers ``InvokeEndpoint`` at
``/endpoints/<name>/invocations``, so the checker's unchanged SageMaker Runtime client
reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .ports import ensure_free


class ModelServer:
    def __init__(
        self,
        model: Path,
        *,
        endpoint_name: str,
        environment: dict[str, str],
        log_path: Path,
        host: str = "127.0.0.1",
        port: int = 8085,
        fault_rate: float = 0.0,
    ) -> None:
        self.model = model
        self.endpoint_name = endpoint_name
        self.environment = environment
        self.log_path = log_path
        self.host = host
        self.port = port
        self.fault_rate = fault_rate
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 300) -> None:
        ensure_free(self.host, self.port, "--model-port")
        command = [
            sys.executable, "-m", "bincheck.cli", "serve",
            "--model", str(self.model),
            "--host", self.host,
            "--port", str(self.port),
            "--endpoint-name", self.endpoint_name,
            "--fault-rate", str(self.fault_rate),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            # Its own session: Ctrl-C reaches the stack, which stops this server in order.
            self._process = subprocess.Popen(  # noqa: S603 (our own command line)
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the model server exited with {self._process.returncode}:\n"
                    + _tail(self.log_path)
                )
            try:
                self.get("/ping")
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"the model server did not answer in {timeout_s:.0f} s; see {self.log_path}"
        )

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
