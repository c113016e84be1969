"""Waiting until other database sessions reach a known point (no sleeps-and-hope).

Sessions are counted in the test database only: the server is shared with other
databases (and, on a developer machine, other test sessions).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, TextClause, text

from tests.support.eventually import eventually

_BLOCKED_BY = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND :pid = ANY(pg_blocking_pids(pid))"
)
_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
)


def _count(engine: Engine, query: TextClause, params: dict[str, Any]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query, params).scalar_one())


def wait_until_blocked_by(engine: Engine, pid: int, timeout: float = 10.0) -> None:
    """Return once some session waits for a lock held by backend `pid`."""
    eventually(
        lambda: _count(engine, _BLOCKED_BY, {"pid": pid}),
        what=f"a session waiting on backend {pid}",
        timeout=timeout,
        interval=0.02,
    )


def wait_until_sessions_wait(engine: Engine, count: int, timeout: float = 10.0) -> None:
    """Return once `count` sessions of the test database wait for a lock."""
    eventually(
        lambda: _count(engine, _WAITING, {}),
        until=lambda waiting: waiting >= count,
        what=f"{count} session(s) waiting for a lock",
        timeout=timeout,
        interval=0.02,
    )
