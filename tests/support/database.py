"""Create and migrate test databases, and the scratch databases some tests need."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orderq.schema import ensure_database_exists, upgrade_to_head
from producers.database import normalize_database_url
from tests.support.environment import direct_url
from worker.adapters.backups import drop_database

#: `<test database>_<purpose>`: the only extra databases tests create. The session's
#: cleanup drops every one of them (tests/support/leftovers.py).
SCRATCH_PURPOSES = ("migrations", "behind", "pgss")


def prepare_database(url: str) -> None:
    ensure_database_exists(url)
    upgrade_to_head(url)


def recreate_empty_database(url: str) -> None:
    """Drop (terminating its connections) and re-create an empty database (straight on
    the server, past any pooler)."""
    target = make_url(normalize_database_url(direct_url(url)))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": target.database},
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def scratch_database_url(test_database_url: str, purpose: str) -> str:
    """The URL of `<test database>_<purpose>` (not created)."""
    assert purpose in SCRATCH_PURPOSES, f"add {purpose!r} to SCRATCH_PURPOSES"
    url = make_url(test_database_url)
    return url.set(database=f"{url.database}_{purpose}").render_as_string(hide_password=False)


@contextmanager
def scratch_database(test_database_url: str, purpose: str) -> Iterator[str]:
    """An empty `<test database>_<purpose>` for the block, dropped after it."""
    url = scratch_database_url(test_database_url, purpose)
    recreate_empty_database(url)
    try:
        yield url
    finally:
        drop_database(url)
