"""Database connections from settings: URL forms, session guards, and the two ways the
command log is reached (one transaction, or one autocommitted statement).

Works straight against PostgreSQL and through PgBouncer in transaction pooling
(`ORDERQ_DB_POOLER=pgbouncer`): then nothing here relies on session state — no startup
options, no server-side prepared statements, timeouts set per transaction (or by the
role) instead of per connection. docs/scaling.md explains the choices.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from producers.settings import ProducerSettings


def normalize_database_url(url: str) -> str:
    """Accept the URL forms platforms hand out and pin the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got driver {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def session_options(settings: ProducerSettings) -> str:
    """Server-side guards so one stuck lock or idle transaction cannot hold a worker."""
    return " ".join(
        [
            f"-c statement_timeout={settings.statement_timeout_ms}",
            f"-c lock_timeout={settings.lock_timeout_ms}",
            f"-c idle_in_transaction_session_timeout={settings.idle_in_transaction_timeout_ms}",
        ]
    )


#: The guards of one transaction in one statement (`is_local`: they end with it).
_SET_LOCAL_GUARDS = (
    "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true),"
    " set_config('idle_in_transaction_session_timeout', %s, true)"
)


def guard_values(settings: ProducerSettings) -> tuple[str, str, str]:
    """statement_timeout, lock_timeout, idle_in_transaction_session_timeout (ms)."""
    return (
        str(settings.statement_timeout_ms),
        str(settings.lock_timeout_ms),
        str(settings.idle_in_transaction_timeout_ms),
    )


def connect_args(settings: ProducerSettings) -> dict[str, Any]:
    """psycopg connection options every orderq process uses."""
    arguments: dict[str, Any] = {
        "application_name": settings.application_name,
        "connect_timeout": settings.db_connect_timeout_seconds,
    }
    if settings.session_guards == "connection":
        arguments["options"] = session_options(settings)
    if settings.db_pooler == "pgbouncer":
        # A statement psycopg prepares on one server connection would be looked up on
        # another one by the next transaction ("prepared statement does not exist"):
        # PgBouncer routes protocol-level prepared statements only from 1.21 on, with
        # max_prepared_statements set. Unnamed statements (extended protocol) still work.
        arguments["prepare_threshold"] = None
    if settings.db_sslmode:
        arguments["sslmode"] = settings.db_sslmode
    return arguments


def install_transaction_guards(engine: Engine, settings: ProducerSettings) -> None:
    """Set the three timeouts at the start of every transaction on `engine`.

    Sent in one pipeline with psycopg's own BEGIN, so a transaction pays no extra
    round trip for it. Autocommitted statements have no transaction to set them in:
    they run under the role's or database's defaults (docs/scaling.md).
    """
    values = guard_values(settings)

    @event.listens_for(engine, "begin")
    def _set_local_guards(connection: Connection) -> None:
        driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
        if driver.autocommit:
            return
        with driver.pipeline():
            driver.execute(_SET_LOCAL_GUARDS, values)


def build_engine(
    settings: ProducerSettings, *, url: str | None = None, **pool_options: Any
) -> Engine:
    """An engine on the configured database (or `url`) with orderq's connection options.

    `pool_options` go to SQLAlchemy (`pool_size`, `max_overflow`, …); a producer needs
    one connection, a worker sizes its pool from its own settings.
    """
    target = normalize_database_url(url or settings.require_database_url())
    engine = create_engine(target, connect_args=connect_args(settings), **pool_options)
    if settings.session_guards == "transaction":
        install_transaction_guards(engine, settings)
    return engine


def build_admin_engine(settings: ProducerSettings, **pool_options: Any) -> Engine:
    """An engine straight to PostgreSQL (`ORDERQ_ADMIN_DATABASE_URL`, else DATABASE_URL),
    for what a transaction-pooling PgBouncer cannot carry."""
    return build_engine(settings, url=settings.require_admin_database_url(), **pool_options)


@contextmanager
def transaction(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A pooled psycopg connection in one transaction: committed if the block ends
    normally, rolled back if it raises."""
    with engine.begin() as connection:
        yield connection.connection.driver_connection  # type: ignore[misc]


@contextmanager
def autocommit(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A pooled psycopg connection on which every statement commits on its own (no
    BEGIN/COMMIT round trips around a single statement)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection.connection.driver_connection  # type: ignore[misc]


def describe_url(url: str) -> str:
    """The URL with any password hidden, for printing."""
    return make_url(url).render_as_string(hide_password=True)
