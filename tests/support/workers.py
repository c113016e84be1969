"""Real Celery worker processes for end-to-end and fault tests."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.eventually import eventually
from tests.support.failpoints import FailpointRecords
from tests.support.names import NAMESPACE
from tests.support.scratch import LOGS, scratch_dir, scratch_file

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_numbers = itertools.count(1)


class WorkerProcess:
    """`celery -A worker.entrypoints.celery_app worker` as a child process group.

    Its log and its failpoint records (`failpoints`) live in the session's scratch
    folder; the log is kept, and its path printed, when a test it ran in fails.
    """

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
        self.hostname = f"{NAMESPACE}-{name}-{next(_numbers)}@%h"
        self.log_path = scratch_file(f"worker-{name}-", ".log")
        LOGS.register(self.log_path, self.is_running)
        self.failpoints = FailpointRecords(scratch_dir(f"failpoints-{name}-"))

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "ORDERQ_FAILPOINT_DIR": str(self.failpoints.directory),
            **self.extra_env,
        }
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
            f"--hostname={self.hostname}",
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
        # Celery's own "ready" line: a start-up handshake, not a result
        self.wait_for_log("ready.", timeout)

    def wait_for_log(self, text: str, timeout: float) -> None:
        """Return once the log shows `text`; fail at once if the worker exits."""

        def logged() -> bool:
            if text in self.log_text():
                return True
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_text()[-3000:]}")
            return False

        eventually(
            logged,
            what=f"worker {self.name} logging {text!r} (log: {self.log_path})",
            timeout=timeout,
            interval=0.1,
        )

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
        """Warm shutdown (SIGTERM to the main process, as `docker stop` sends it: the
        pool finishes what it holds), then SIGKILL the whole group if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
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


@contextlib.contextmanager
def running_beat(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`celery beat` with the test environment plus `env`, for the block; its schedule
    file lives in the session's scratch folder."""
    schedule = scratch_dir("beat-") / "schedule"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.entrypoints.celery_app",
            "beat",
            f"--schedule={schedule}",
            "--loglevel=INFO",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
