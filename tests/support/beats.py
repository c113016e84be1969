"""Real `celery beat` processes (several at once: one per "host")."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from tests.support.scratch import LOGS, scratch_file
from tests.support.workers import PROJECT_ROOT


class BeatProcess:
    """`celery -A worker.entrypoints.celery_app beat` as a child process group.

    No state file: the claiming scheduler keeps its memory in PostgreSQL.
    """

    def __init__(self, env: dict[str, str] | None = None, name: str = "beat") -> None:
        self.extra_env = env or {}
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = scratch_file(f"{name}-", ".log")
        LOGS.register(
            self.log_path, lambda: self.process is not None and self.process.poll() is None
        )

    def start(self) -> BeatProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.entrypoints.celery_app",
                "beat",
                "--loglevel=INFO",
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, **self.extra_env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self._log.close()
        self.log_path.unlink(missing_ok=True)
