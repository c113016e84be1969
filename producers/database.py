"""Database connections from settings: URL forms, session guards, and the two ways the
command log is reached (one transaction, or one autocommitted statement)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine
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


def connect_args(settings: ProducerSettings) -> dict[str, Any]:
    """psycopg connection options every orderq process uses."""
    arguments: dict[str, Any] = {
        "application_name": settings.application_name,
        "options": session_options(settings),
        "connect_timeout": settings.db_connect_timeout_seconds,
    }
    if settings.db_sslmode:
        arguments["sslmode"] = settings.db_sslmode
    return arguments


def build_engine(
    settings: ProducerSettings, *, url: str | None = None, **pool_options: Any
) -> Engine:
    """An engine on the configured database (or `url`) with orderq's connection options.

    `pool_options` go to SQLAlchemy (`pool_size`, `max_overflow`, …); a producer needs
    one connection, a worker sizes its pool from its own settings.
    """
    target = normalize_database_url(url or settings.require_database_url())
    return create_engine(target, connect_args=connect_args(settings), **pool_options)


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
