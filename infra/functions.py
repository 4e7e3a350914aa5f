"""Each Lambda function's code asset: its own folder under ``lambdas/``, plus the shared
contract (``contract/``) where it imports it, and nothing else.

Staged at synthesis (plain file copies: no bundling, so no Docker) into
``build/functions/<name>-<content hash>/``, with the function's package and the contract
side by side at the root, as the handler imports them (``checker.handler``, ``contract``).
Named by content, so two synthesises at once (the tests' and ``make synth``) cannot stage
one's files under the other's name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from aws_cdk import Aws, Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import REPO, BinCheckConfig
from .log_groups import function_role

POWERTOOLS_ACCOUNT = "017000801446"  # AWS's account publishing the managed Powertools layers
BUILD = REPO / "build" / "functions"
STALE_S = 3600  # older stagings of other contents are removed after an hour
# function -> the repository folders its asset holds, each at the asset's root
SOURCES: dict[str, tuple[str, ...]] = {
    "checker": ("lambdas/checker", "contract"),
    "review": ("lambdas/review", "contract"),  # the review API and its backlog metrics
    "retraining": ("lambdas/retraining",),
}


ASSET_SUFFIXES = {".py", ".html", ".css", ".js"}


def source_files(name: str) -> dict[str, bytes]:
    """The asset's files by path: every ``.py`` of the function's folders, and the web
    files of the review page (``lambdas/review/page/``)."""
    files: dict[str, bytes] = {}
    for folder in SOURCES[name]:
        root = REPO / folder
        for path in sorted(p for p in root.rglob("*") if p.suffix in ASSET_SUFFIXES):
            if "__pycache__" not in path.parts:
                files[f"{root.name}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def stage(name: str, folder: Path = BUILD) -> Path:
    """Writes ``folder/<name>-<hash>/`` (unless it is there) and returns it."""
    files = source_files(name)
    digest = hashlib.sha256()
    for path, data in sorted(files.items()):
        digest.update(f"{path}\0{len(data)}\0".encode())
        digest.update(data)
    target = folder / f"{name}-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        temporary = folder / f".{target.name}.{os.getpid()}.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        for path, data in files.items():
            (temporary / path).parent.mkdir(parents=True, exist_ok=True)
            (temporary / path).write_bytes(data)
        try:
            temporary.rename(target)
        except OSError:  # staged meanwhile by another synthesis: the same contents
            shutil.rmtree(temporary, ignore_errors=True)
    for old in folder.glob(f"{name}-*"):
        if old != target and old.stat().st_mtime < time.time() - STALE_S:
            shutil.rmtree(old, ignore_errors=True)
    return target


def function_code(name: str) -> lambda_.Code:
    """The function's asset, staged from this checkout."""
    return lambda_.Code.from_asset(str(stage(name)))


def python_runtime(config: BinCheckConfig) -> lambda_.Runtime:
    return lambda_.Runtime(f"python{config.python_runtime}", lambda_.RuntimeFamily.PYTHON)


def powertools_layer(scope: Construct, id: str, config: BinCheckConfig) -> lambda_.ILayerVersion:
    """The AWS-managed Powertools for AWS Lambda (Python) v3 layer, x86_64, of the runtime."""
    runtime_tag = "python" + config.python_runtime.replace(".", "")
    return lambda_.LayerVersion.from_layer_version_arn(
        scope,
        id,
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{runtime_tag}-x86_64:{config.powertools_layer_version}",
    )


def powertools_function(
    scope: Construct,
    id: str,
    *,
    config: BinCheckConfig,
    package: str,
    handler: str,
    description: str,
    layer: lambda_.ILayerVersion,
    logs_to: logs.ILogGroup,
    role_description: str,
    timeout_s: float,
    memory_mb: int,
    environment: dict[str, str],
    tracing: bool = True,
) -> lambda_.Function:
    """A function of ``package``'s asset with the Powertools ``layer`` (``powertools_layer``):
    on the runtime and architecture that layer is built for, writing to ``logs_to`` under a
    role of its own (``<id>Role``) that may do nothing else yet."""
    return lambda_.Function(
        scope,
        id,
        description=description,
        runtime=python_runtime(config),
        architecture=lambda_.Architecture.X86_64,
        code=function_code(package),
        handler=handler,
        layers=[layer],
        timeout=Duration.seconds(timeout_s),
        memory_size=memory_mb,
        tracing=lambda_.Tracing.ACTIVE if tracing else None,
        environment=environment,
        log_group=logs_to,
        role=function_role(scope, f"{id}Role", logs_to=logs_to, description=role_description),
    )
