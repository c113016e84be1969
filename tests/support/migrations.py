"""Running migrations in tests: Alembic config, a scratch database, and watching a
migration build an index while other sessions write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from sqlalchemy import Engine, create_engine, text

from orderq.schema import alembic_config
from tests.support.database import scratch_database
from tests.support.environment import TEST_DATABASE_URL
from tests.support.eventually import eventually


@contextmanager
def empty_database() -> Iterator[str]:
    """An empty database next to the test database for the block, dropped after it."""
    with scratch_database(TEST_DATABASE_URL, "migrations") as url:
        yield url


@contextmanager
def scratch_engine() -> Iterator[tuple[str, Engine]]:
    """An empty database and an engine on it, for the block."""
    with empty_database() as url:
        engine = create_engine(url)
        try:
            yield url, engine
        finally:
            engine.dispose()


def index_build_waiting(engine: Engine, table: str) -> bool:
    """Is an index build on `table` in progress (pg_stat_progress_create_index)?"""
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT 1 FROM pg_stat_progress_create_index p "
                    "JOIN pg_class c ON c.oid = p.relid WHERE c.relname = :t"
                ),
                {"t": table},
            ).scalar()
        )


def write_with_lock_timeout(engine: Engine, sql: str, **params: object) -> None:
    """One committed write that refuses to wait more than a second for a table lock."""
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '1s'"))
        connection.execute(text(sql), params)


@contextmanager
def upgrading_while_a_writer_holds(
    url: str,
    engine: Engine,
    revision: str,
    table: str,
    held_write: str,
    isolation_level: str | None = None,
    **params: object,
) -> Iterator[None]:
    """Upgrade to `revision` in a thread while an open transaction holds `held_write`:
    a CONCURRENTLY build then waits for it, visibly in progress, for as long as the
    body runs. Afterwards the writer commits and the migration must finish cleanly.

    With `isolation_level="REPEATABLE READ"` the writer also holds its snapshot, which
    every CONCURRENTLY build waits for, whatever table the write touched."""
    writer = engine.connect()
    if isolation_level is not None:
        writer = writer.execution_options(isolation_level=isolation_level)
    writer.execute(text(held_write), params)
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            command.upgrade(alembic_config(url), revision)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    migration = threading.Thread(target=migrate)
    migration.start()
    try:
        eventually(
            lambda: index_build_waiting(engine, table), what=f"an index build on {table} waiting"
        )
        yield
        assert migration.is_alive() and index_build_waiting(engine, table)
    finally:
        writer.commit()
        writer.close()
        migration.join(60)
    assert not errors and not migration.is_alive()


def index_validity(engine: Engine, names: list[str]) -> list[tuple[str, bool]]:
    """(index name, indisvalid) for `names`, sorted."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(:names)"
            ),
            {"names": names},
        ).all()
    return sorted((name, valid) for name, valid in rows)
