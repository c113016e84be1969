"""A real `orderq serve` process for the HTTP tests, and a small client for it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

import httpx

from tests.support.cli import free_port
from tests.support.eventually import eventually
from tests.support.scratch import LOGS, scratch_file
from tests.support.workers import PROJECT_ROOT


class ApiServer:
    """`orderq serve` on a free port, in its own process group (Granian's server and
    worker processes): `kill()` is a SIGKILL of the whole server."""

    def __init__(self, env: dict[str, str] | None = None, command: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        #: how to start it (`--port=N` is added): `orderq serve`, or a wrapper of it
        self.command = command or [sys.executable, "-m", "orderq.cli", "serve"]
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = scratch_file("api-", ".log")
        LOGS.register(
            self.log_path, lambda: self.process is not None and self.process.poll() is None
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> ApiServer:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.command, f"--port={self.port}"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **self.extra_env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        eventually(self._ready, what=f"orderq serve answering on {self.url}", timeout=timeout)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"orderq serve exited:\n{self.log_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL every process of the server at once (a crashed host, the OOM killer)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop (SIGTERM), SIGKILL if it lingers; removes the log."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a stray worker process, if any
        self._log.close()
        self.log_path.unlink(missing_ok=True)


class Client:
    """An upstream system calling the API with its token."""

    def __init__(self, base_url: str, token: str, name: str = "") -> None:
        self.name = name
        self.token = token
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None,
        wait: float | None = None,
        **headers: str,
    ) -> httpx.Response:
        """POST `body` as JSON with `Idempotency-Key: key` (None: no header)."""
        sent = {name.replace("_", "-"): value for name, value in headers.items()}
        if key is not None:
            sent["Idempotency-Key"] = key
        if wait is not None:
            sent["Prefer"] = f"wait={wait:g}"
        return self.http.post(path, json=body, headers=sent)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def close(self) -> None:
        self.http.close()
