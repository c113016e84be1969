"""PostgreSQL advisory locks that keep two runs of one maintenance task apart.

The lock is a transaction-level lock (`pg_try_advisory_xact_lock`), taken in a
transaction of its own on a connection of its own and held for the whole run, so a
task made of many short transactions on other connections is still covered end to
end. It ends with that transaction: on commit, on rollback, or when PostgreSQL drops
the connection of a process that died.

Transaction-level, not session-level, so it works through PgBouncer in transaction
pooling: a session lock would stay on whichever server connection PgBouncer lent for
the one statement, and the unlock could reach another one.

The holding transaction must hold no snapshot while it waits for the run, or it would
pin the database's xmin horizon: VACUUM could not remove rows the run itself deletes,
and REINDEX/CREATE INDEX CONCURRENTLY (the upkeep jobs) would wait for it until their
lock timeout. A READ COMMITTED transaction releases its snapshot after each statement
— except that a statement sent with bound parameters (the extended protocol) leaves its
unnamed portal, and the portal's snapshot, in place until the next statement. So the
statements here carry their values inline (an integer key and a constant): the simple
protocol, no portal, no snapshot (tests/integration/maintenance/test_advisory_locks.py).
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
    key = int(lock_key(name))  # an int, inlined: no bound parameter (see above)
    with engine.connect() as connection, connection.begin():
        # The holding transaction sits idle while the run works on other connections:
        # the idle-in-transaction guard must not end it (and the lock) mid-run. A dead
        # or killed process still ends it: PostgreSQL drops its connection.
        connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        acquired = bool(
            connection.execute(text(f"SELECT pg_try_advisory_xact_lock({key})")).scalar()
        )
        yield acquired
