"""PostgreSQL advisory locks that keep two runs of one maintenance task apart.

The lock is a transaction-level lock (`pg_try_advisory_xact_lock`), taken in a
transaction of its own on a connection of its own and held for the whole run, so a
task made of many short transactions on other connections is still covered end to
end. It ends with that transaction: on commit, on rollback, or when PostgreSQL drops
the connection of a process that died.

Transaction-level, not session-level, so it works through PgBouncer in transaction
pooling: a session lock would stay on whichever server connection PgBouncer lent for
the one statement, and the unlock could reach another one. The transaction holds no
snapshot between statements (READ COMMITTED, no writes), so it does not hold back
vacuum while it waits for the run to finish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

#: Every orderq advisory lock key starts from this name, so keys stay apart from
#: locks other applications might take in the same database.
NAMESPACE = "orderq.maintenance"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (PostgreSQL's bigint lock space)."""
    digest = hashlib.sha256(f"{NAMESPACE}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Try to take the lock for `name`; yield whether this run holds it.

    Never waits: a second run sees False at once and should skip.
    """
    with engine.connect() as connection, connection.begin():
        # The holding transaction sits idle while the run works on other connections:
        # the idle-in-transaction guard must not end it (and the lock) mid-run. A dead
        # or killed process still ends it: PostgreSQL drops its connection.
        connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        acquired = bool(
            connection.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": lock_key(name)}
            ).scalar()
        )
        yield acquired
