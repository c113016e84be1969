"""Real Celery worker processes for end-to-end and fault tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """`celery -A worker.entrypoints.celery_app worker` as a child process group."""

    def __init__(
        self,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        queues: str | None = None,
        name: str = "test",
        app: str = "worker.entrypoints.celery_app",
    ) -> None:
        self.app = app
        self.concurrency = concurrency
        self.extra_env = env or {}
        self.queues = queues
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"orderq-{name}-", suffix=".log")[1])

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, **self.extra_env}
        queues = self.queues or env["ORDERQ_COMMAND_QUEUE"]
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            self.app,
            "worker",
            "--pool=prefork",
            f"--concurrency={self.concurrency}",
            f"--queues={queues}",
            f"--hostname={self.name}-{os.getpid()}-{id(self)}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches every child
        )
        self.wait_for_log("ready.", timeout)

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"worker did not log {text!r} in {timeout}s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def child_pids(self) -> list[int]:
        """The prefork pool's processes (the ones that run commands)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except FileNotFoundError:
            return []

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL the whole group if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stray pool children, if any
        self._log.close()

    @contextlib.contextmanager
    def running(self, timeout: float = 60.0) -> Iterator[WorkerProcess]:
        """Started for the block, stopped after it (even if the block fails)."""
        self.start(timeout)
        try:
            yield self
        finally:
            self.stop()

    def kill(self) -> None:
        """SIGKILL the main process and its children at once (a crashed host)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
