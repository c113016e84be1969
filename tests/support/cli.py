"""Run the `orderq` command as a user would: a subprocess with its own environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.eventually import eventually

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORDERQ = str(Path(sys.executable).parent / "orderq")


def orderq(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    """`orderq ARGS…` with the test environment plus `env`; returns the finished process."""
    return subprocess.run(
        [ORDERQ, *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A local TCP port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """Does something accept TCP connections on 127.0.0.1:`port` right now?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Return once something accepts TCP connections on 127.0.0.1:`port`."""
    eventually(
        lambda: listening(port),
        what=f"something listening on port {port}",
        timeout=timeout,
        interval=0.1,
    )
