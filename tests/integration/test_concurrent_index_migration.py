"""Index migrations on big tables build CONCURRENTLY: writes to the table go on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from producers.cli.ops import ALEMBIC_INI
from tests.support.database import recreate_empty_database
from tests.support.environment import TEST_DATABASE_URL
from worker.adapters.tables import metadata

LEDGER_ROW = (
    "INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status, result) "
    "VALUES (:key, 'place_order', repeat('a', 64), 'succeeded', '{}')"
)


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


@pytest.fixture
def scratch_database() -> Iterator[tuple[str, Engine]]:
    url = make_url(TEST_DATABASE_URL)
    url = url.set(database=f"{url.database}_migrations").render_as_string(hide_password=False)
    recreate_empty_database(url)
    engine = create_engine(url)
    yield url, engine
    engine.dispose()


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def index_build_waiting(engine: Engine, table: str) -> bool:
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


def write_with_lock_timeout(engine: Engine, key: str) -> None:
    """One committed write that refuses to wait more than a second for a table lock."""
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '1s'"))
        connection.execute(text(LEDGER_ROW), {"key": key})


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
    writer = engine.connect()
    writer.execute(text(LEDGER_ROW), {"key": "in-flight"})
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            command.upgrade(alembic_config(url), "0005")
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    migration = threading.Thread(target=migrate)
    migration.start()
    try:
        wait_until(lambda: index_build_waiting(engine, "command_ledger"))

        write_with_lock_timeout(engine, "during-build")  # a plain CREATE INDEX would block it

        assert migration.is_alive() and index_build_waiting(engine, "command_ledger")
    finally:
        writer.commit()
        writer.close()
        migration.join(60)
    assert not errors and not migration.is_alive()
    with engine.connect() as connection:
        valid = connection.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(:names)"
            ),
            {"names": ["ix_command_ledger_created_at", "ix_command_deliveries_pending_updated_at"]},
        ).all()
        written = connection.execute(
            text("SELECT count(*) FROM command_ledger WHERE idempotency_key = 'during-build'")
        ).scalar()
    assert sorted(valid) == [
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
        wait_until(
            lambda: index_build_waiting(engine, "command_ledger") or _waiting_on_lock(engine)
        )
        with pytest.raises(OperationalError, match="lock timeout"):
            write_with_lock_timeout(engine, "during-build")
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


def test_migrations_round_trip_and_match_the_declared_schema(scratch_database):
    url, engine = scratch_database
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []
