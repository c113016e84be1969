"""Helpers for tests that run their own embedded servers in a temporary data folder."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from orderq.embedded.layout import pgdata_of, redis_socket_of


def postmasters(data_dir: Path) -> list[psutil.Process]:
    """Live postmasters serving this data folder (there must never be two)."""
    needle = f"-D {pgdata_of(data_dir.resolve())}"
    return _live_matching("postgres", needle)


def redis_servers(data_dir: Path) -> list[psutil.Process]:
    """Live redis-servers serving this data folder's socket."""
    return _live_matching("redis-server", str(redis_socket_of(data_dir.resolve())))


def _live_matching(name: str, needle: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        info = process.info
        if info["status"] == psutil.STATUS_ZOMBIE or not (info["name"] or "").startswith(name):
            continue
        if needle in " ".join(info["cmdline"] or ()):
            found.append(process)
    return found


def kill_hard(pid: int) -> None:
    """SIGKILL, as the OOM killer or a crashed host would."""
    os.kill(pid, signal.SIGKILL)


def clean_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a new user: no server URLs, only a data folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DATABASE_URL", "CELERY_BROKER_URL", "ORDERQ_DATABASE_URL", "ORDERQ_BROKER_URL")
    }
    env["ORDERQ_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env
