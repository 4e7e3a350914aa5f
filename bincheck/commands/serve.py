"""``bincheck serve``: a model over HTTP, as the SageMaker container serves it."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import DEFAULT_MODEL, DEFAULTS, require_model


def add_to(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="serve a model over HTTP like the SageMaker container (/ping, /invocations)"
    )
    serve.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model.tar.gz")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-batch", type=int, default=32, help="images per network call")
    serve.add_argument(
        "--batch-window-ms", type=float, default=2.0, help="how long a batch waits for company"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="batches in the network at once (default: one per core on a CPU, one on a GPU)",
    )
    serve.add_argument(
        "--plain", action="store_true", help="full decode and float32 (the reference path)"
    )
    serve.add_argument(
        "--endpoint-name",
        default=DEFAULTS.endpoint,
        help="answer InvokeEndpoint for this name at /endpoints/NAME/invocations",
    )
    serve.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fail this share of InvokeEndpoint calls on purpose (resilience tests)",
    )
    serve.set_defaults(run=serve_model)


def serve_model(args: argparse.Namespace) -> int:
    require_model(args.model)
    from ..inference_server import serve
    from ..local.ports import ensure_free

    ensure_free(args.host, args.port, "--port")
    serve(
        args.model,
        host=args.host,
        port=args.port,
        fast=not args.plain,
        max_batch=args.max_batch,
        window_ms=args.batch_window_ms,
        endpoint_name=args.endpoint_name,
        fault_rate=args.fault_rate,
        workers=args.workers,
    )
    return 0
