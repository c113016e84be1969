"""Process and lock helpers shared by the embedded servers.

A data folder is guarded by an advisory `flock`: the kernel drops it when its holder
dies, however it dies, so a killed run can never leave a lock behind that blocks the
next one. What a killed run *can* leave behind is a pid file naming a dead (or
reused) process id; `live_process` tells those apart from a real server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # psutil comes with the `embedded` extra; imported where used
    import psutil


class LockHeld(RuntimeError):
    """Another process holds the lock (its pid, if it wrote one, is in the message)."""


@contextlib.contextmanager
def locked(path: Path, *, wait: float = 60.0, what: str = "the data folder") -> Iterator[None]:
    """Hold an exclusive advisory lock on `path`, waiting up to `wait` seconds for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise LockHeld(f"{what} is locked by another process (pid {holder})") from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None if absent or unreadable."""
    try:
        first = path.read_text().splitlines()[0].strip()
        return int(first)
    except (FileNotFoundError, IndexError, ValueError):
        return None


def live_process(pid: int | None, *, name: str, mentions: str) -> psutil.Process | None:
    """The process `pid` if it is alive (not a zombie), is called `name` and mentions
    `mentions` on its command line; None for a stale pid file's dead or reused pid."""
    import psutil

    if pid is None or pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if process.name() != name and not process.name().startswith(name):
            return None
        if mentions not in " ".join(process.cmdline()):
            return None
        return process
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def processes_mentioning(name: str, mentions: str) -> list[psutil.Process]:
    """Every live process called `name` whose command line mentions `mentions`."""
    import psutil

    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        info = process.info
        if info["status"] == psutil.STATUS_ZOMBIE or not (info["name"] or "").startswith(name):
            continue
        if mentions in " ".join(info["cmdline"] or ()):
            found.append(process)
    return found


def wait_gone(process: psutil.Process, timeout: float) -> bool:
    """Wait for a process (not necessarily our child) to exit; True if it did.

    A zombie counts as gone: it has exited and only waits for its parent to reap it.
    """
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"
