"""Index migrations on big tables build CONCURRENTLY: writes to the table go on."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from tests.support.eventually import eventually
from tests.support.migrations import (
    alembic_config,
    index_build_waiting,
    index_validity,
    scratch_engine,
    upgrading_while_a_writer_holds,
    write_with_lock_timeout,
)

LEDGER_ROW = (
    "INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status, result) "
    "VALUES (:key, 'place_order', repeat('a', 64), 'succeeded', '{}')"
)


@pytest.fixture
def scratch_database() -> Iterator[tuple[str, Engine]]:
    with scratch_engine() as database:
        yield database


def test_the_index_migration_lets_writes_through_while_it_builds(scratch_database):
    url, engine = scratch_database
    command.upgrade(alembic_config(url), "0004")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status, "
                "result) SELECT 'k' || g, 'place_order', repeat('a', 64), 'succeeded', '{}' "
                "FROM generate_series(1, 20000) g"
            )
        )
    # An open write transaction makes CREATE INDEX CONCURRENTLY wait for it: the build
    # stays in progress for as long as this test needs to look at it.
    with upgrading_while_a_writer_holds(
        url, engine, "0005", "command_ledger", LEDGER_ROW, key="in-flight"
    ):
        # a plain CREATE INDEX would block this write
        write_with_lock_timeout(engine, LEDGER_ROW, key="during-build")

    with engine.connect() as connection:
        written = connection.execute(
            text("SELECT count(*) FROM command_ledger WHERE idempotency_key = 'during-build'")
        ).scalar()
    assert index_validity(
        engine, ["ix_command_ledger_created_at", "ix_command_deliveries_pending_updated_at"]
    ) == [
        ("ix_command_deliveries_pending_updated_at", True),
        ("ix_command_ledger_created_at", True),
    ]
    assert written == 1


def test_a_plain_index_build_would_have_blocked_the_same_write(scratch_database):
    """The control experiment: without CONCURRENTLY the write above cannot get through."""
    url, engine = scratch_database
    command.upgrade(alembic_config(url), "0004")
    writer = engine.connect()
    writer.execute(text(LEDGER_ROW), {"key": "in-flight"})
    builder = threading.Thread(
        target=lambda: _autocommit(engine, "CREATE INDEX plain_ix ON command_ledger (created_at)")
    )
    builder.start()
    try:
        eventually(
            lambda: index_build_waiting(engine, "command_ledger") or _waiting_on_lock(engine),
            what="the plain index build on command_ledger under way or waiting for its lock",
        )
        with pytest.raises(OperationalError, match="lock timeout"):
            write_with_lock_timeout(engine, LEDGER_ROW, key="during-build")
    finally:
        writer.commit()
        writer.close()
        builder.join(60)


def _autocommit(engine: Engine, statement: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(statement))


def _waiting_on_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'CREATE INDEX plain_ix%'"
                )
            ).scalar()
        )
