"""Statement, lock and idle-in-transaction timeouts reach the server three ways; the
PgBouncer mode never relies on session state."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import pool, text

from orderq.settings import Settings
from producers.database import build_engine, connect_args, transaction
from tests.support.environment import TEST_ADMIN_DATABASE_URL

#: straight to PostgreSQL, whatever pooler the session's database sits behind
DIRECT = {"database_url": TEST_ADMIN_DATABASE_URL, "db_pooler": "none"}

SHOW = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"


def guards(settings: Settings) -> tuple[tuple[str, str], tuple[str, str]]:
    """(inside a transaction, in an autocommitted statement)."""
    engine = build_engine(settings, poolclass=pool.NullPool)
    try:
        with transaction(engine) as connection:
            inside = connection.execute(SHOW).fetchone()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            alone = connection.execute(text(SHOW)).one()
    finally:
        engine.dispose()
    return tuple(inside), tuple(alone)  # type: ignore[return-value]


def test_direct_connections_carry_the_guards_as_startup_options(migrated_database):
    settings = Settings(**DIRECT, lock_timeout_ms=1234, statement_timeout_ms=4321)

    assert "options" in connect_args(settings)
    assert guards(settings) == (("1234ms", "4321ms"),) * 2


def test_per_transaction_guards_are_set_local_and_end_with_the_transaction(migrated_database):
    settings = Settings(
        **DIRECT, db_session_guards="transaction", lock_timeout_ms=1234, statement_timeout_ms=4321
    )
    inside, alone = guards(settings)

    assert "options" not in connect_args(settings)
    assert inside == ("1234ms", "4321ms")
    assert alone != inside  # no session state left behind on a (pooled) server connection


def test_the_pgbouncer_mode_sends_no_startup_options_and_prepares_nothing():
    settings = Settings(db_pooler="pgbouncer")

    arguments = connect_args(settings)

    assert settings.session_guards == "transaction"
    assert "options" not in arguments and arguments["prepare_threshold"] is None
    with pytest.raises(ValidationError, match="PgBouncer refuses"):
        Settings(db_pooler="pgbouncer", db_session_guards="connection")


def test_server_guards_send_nothing(migrated_database):
    settings = Settings(**DIRECT, db_session_guards="server", lock_timeout_ms=1234)

    inside, _ = guards(settings)

    assert "options" not in connect_args(settings)
    assert inside[0] != "1234ms"  # the role's / database's value
