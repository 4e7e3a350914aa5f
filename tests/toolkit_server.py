"""A model artifact served the way the AWS PyTorch inference container serves it.

The container's entry point runs ``sagemaker_pytorch_serving_container.serving.main()``
(PyPI ``sagemaker-pytorch-inference``), which writes TorchServe's configuration, pip-installs
``code/requirements.txt`` when there is one, and starts TorchServe (Java) on the model
extracted into ``/opt/ml/model``. Here the same code runs on this machine, with three
differences that keep it off the machine's own paths: the model folder is a temporary
``<base>/model`` (``SAGEMAKER_BASE_DIR``, the toolkit's setting), the configuration file the
toolkit writes to ``/etc/sagemaker-ts.properties`` goes under the base folder, and ports are
free ones. The Python it runs on is this environment without what the container lacks
(timm and the packages only timm would use) and without this project: the artifact must
bring its own. Every package index is unreachable.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# Not in the AWS PyTorch inference image; and this project, which only the artifact brings.
ABSENT_FROM_CONTAINER = ("timm", "huggingface_hub", "safetensors", "bincheck")
LAUNCHER = (
    "import os\n"
    "from sagemaker_pytorch_serving_container import serving, torchserve\n"
    "torchserve.TS_CONFIG_FILE = os.environ['TOOLKIT_TS_CONFIG']  # not /etc\n"
    "serving.main()\n"
)
TS_NAMESPACE = "org.pytorch.serve.ModelServer"


def java_missing() -> str | None:
    """Why TorchServe cannot run here, if it cannot."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "TorchServe needs Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
    return None


def container_python(root: Path) -> Path:
    """A virtual environment that sees this one's packages except ``ABSENT_FROM_CONTAINER``,
    with its own ``torchserve`` command, so TorchServe's workers run on it too."""
    if (root / "bin" / "torchserve").is_file():
        return root / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    here = Path(sysconfig.get_paths()["purelib"])
    visible = root / "visible"
    visible.mkdir()
    for entry in here.iterdir():
        name = entry.name.lower().replace("-", "_")
        if not name.startswith(ABSENT_FROM_CONTAINER) and "editable" not in name:
            (visible / entry.name).symlink_to(entry)
    purelib = subprocess.run(
        [
            str(root / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "visible.pth").write_text(f"import site; site.addsitedir({str(visible)!r})\n")
    script = Path(sys.executable).parent / "torchserve"
    _, _, body = script.read_text().partition("\n")
    torchserve = root / "bin" / "torchserve"
    torchserve.write_text(f"#!{root / 'bin' / 'python'}\n{body}")
    torchserve.chmod(0o755)
    return root / "bin" / "python"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def offline_environment(
    python: Path, base: Path, port: int, settings: dict[str, str]
) -> dict[str, str]:
    """The process environment: the endpoint's ``settings``, the toolkit's, TorchServe's
    extra ports, every package index closed, no proxy."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("PIP_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))
        and key not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    return (
        env
        | settings
        | {
            "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
            "SAGEMAKER_BASE_DIR": str(base),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "1",  # one GPU on ml.g4dn.xlarge: one worker
            "TOOLKIT_TS_CONFIG": str(base / "sagemaker-ts.properties"),
            "TS_METRICS_ADDRESS": f"http://127.0.0.1:{free_port()}",
            "TS_GRPC_INFERENCE_PORT": str(free_port()),
            "TS_GRPC_MANAGEMENT_PORT": str(free_port()),
            "LOG_LOCATION": str(base / "logs"),
            "METRICS_LOCATION": str(base / "logs"),
            "TMPDIR": str(base),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/simple/",  # nothing listens
            "NO_PROXY": "*",
        }
    )


@dataclass
class ToolkitServer:
    url: str
    model_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    timings: dict[str, float] = field(default_factory=dict)
    early: tuple[int, str, bytes] | None = None  # the answer to a request sent at once

    def post(
        self,
        body: bytes,
        content_type: str,
        accept: str | None = "application/json",
        *,
        timeout_s: float = 60,
    ) -> tuple[int, str, bytes]:
        """Status, content type and body of ``POST /invocations``."""
        headers = {"Content-Type": content_type} | ({"Accept": accept} if accept else {})
        request = urllib.request.Request(f"{self.url}/invocations", body, headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()

    def ping(self) -> int | None:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_healthy(self, timeout_s: float) -> None:
        """Until ``/ping`` answers 200, or the toolkit gives up."""
        deadline = time.monotonic() + timeout_s
        while self.ping() != 200:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the toolkit exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no healthy /ping in {timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        """As SageMaker stops the container: SIGTERM to the toolkit, which passes it on to
        TorchServe; TorchServe stops its workers."""
        servers = _model_servers(self.model_dir)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for server in servers:
            try:
                server.wait(timeout=20)
            except Exception:  # psutil.TimeoutExpired; gone already is fine too
                if server.is_running():
                    server.kill()


def start(artifact: Path, base: Path, python: Path, settings: dict[str, str]) -> ToolkitServer:
    """Extract ``artifact`` into ``base/model`` and start the toolkit on it, with the
    endpoint's environment ``settings``."""
    model_dir = base / "model"
    model_dir.mkdir(parents=True)
    with tarfile.open(artifact) as tar:
        tar.extractall(model_dir, filter="data")
    port = free_port()
    log = base / "toolkit.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(python), "-c", LAUNCHER],
            cwd=base,
            env=offline_environment(python, base, port, settings),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ToolkitServer(f"http://127.0.0.1:{port}", model_dir, process, log)


def _model_servers(model_dir: Path) -> list:
    """TorchServe's Java process serving ``model_dir`` (it outlives ``torchserve --start``)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if TS_NAMESPACE in cmdline and any(str(model_dir) in part for part in cmdline):
            found.append(process)
    return found
