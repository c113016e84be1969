"""PostgreSQL advisory locks that keep two runs of one maintenance task apart.

The lock is a session lock taken on a connection of its own and held for the whole
run, so a task made of many short transactions is still covered end to end. If the
process dies, PostgreSQL drops the connection and the lock with it.
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
    key = lock_key(name)
    with engine.connect() as connection:
        acquired = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        )
        connection.commit()  # end the implicit transaction; the session lock stays
        try:
            yield acquired
        finally:
            if acquired:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
