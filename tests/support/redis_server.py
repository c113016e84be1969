"""A private, throw-away redis-server that a test may stop and restart at will.

Fault tests must never restart the shared Redis other people are using; they start one
of these on a free port instead. It persists with an append-only file (fsync on every
write), like a production broker configured not to lose messages, so a restart keeps
the queued and the unacknowledged messages.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time

from tests.support.cli import free_port
from tests.support.eventually import eventually
from tests.support.scratch import scratch_dir

REDIS_SERVER = shutil.which("redis-server") or "redis-server"


class PrivateRedis:
    """`redis-server` on its own port and data folder; `stop()`/`start()` keep the data."""

    def __init__(self, port: int | None = None, fsync: str = "always") -> None:
        self.port = port or free_port()
        self.fsync = fsync
        self.directory = scratch_dir("redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.fsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        eventually(
            self._answers,
            what=f"private redis-server answering on port {self.port} ({self.directory})",
            timeout=timeout,
        )

    def _answers(self) -> bool:
        if self.ping():
            return True
        if self.process is not None and self.process.poll() is not None:
            log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"private redis-server on port {self.port} exited:\n{log}")
        return False

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (SIGTERM: it flushes its append-only file first)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down for `down_for` seconds (the outage itself: not a barrier),
        start again on the same port with the same data."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        """Stop for good and delete the data folder."""
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
