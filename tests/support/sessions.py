"""Waiting until another database session reaches a known point (no sleeps-and-hope)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, TextClause, text

_BLOCKED_BY = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
# The executor's last statement before its `before_commit` failpoint is the ledger UPDATE.
_ABOUT_TO_COMMIT = text(
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
    "AND ltrim(query, E' \\n') LIKE 'UPDATE command_ledger%'"
)


def _wait_for(
    engine: Engine, query: TextClause, params: dict[str, Any], what: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(query, params).scalar():
                return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def wait_until_blocked_by(engine: Engine, pid: int, timeout: float = 10.0) -> None:
    """Return once some session waits for a lock held by backend `pid`."""
    _wait_for(engine, _BLOCKED_BY, {"pid": pid}, f"a session waiting on backend {pid}", timeout)


def wait_until_about_to_commit(engine: Engine, timeout: float = 10.0) -> None:
    """Return once some command has recorded its outcome and waits to commit."""
    _wait_for(engine, _ABOUT_TO_COMMIT, {}, "a command reaching before_commit", timeout)
