"""`orderq flower` as a child process of a test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO, Any

from tests.support.cli import ORDERQ, PROJECT_ROOT


def start_flower(
    port: int, credentials: str, state_file: Path, stderr: int | IO[Any] = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """Flower on `port`, asking for `credentials` (user:password), its state kept in
    `state_file`; in a session of its own, so the test can signal its whole group."""
    return subprocess.Popen(
        [ORDERQ, "flower", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "FLOWER_BASIC_AUTH": credentials,
            "ORDERQ_FLOWER_STATE_FILE": str(state_file),
        },
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
