"""Refuse a busy port before a server thread or process trips over it, with a clear message."""

from __future__ import annotations

import socket


def ensure_free(host: str, port: int, option: str) -> None:
    """Raise ``OSError`` naming ``option`` (the flag that changes the port) if taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port with only closed connections lingering is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(
                f"cannot listen on {host}:{port} ({error.strerror}): is another server "
                f"running there? Choose another port with {option}"
            ) from error


def free_port(host: str = "127.0.0.1") -> int:
    """A port the system has just handed out as free (for tests and parallel stacks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
