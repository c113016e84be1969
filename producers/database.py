"""Engine construction from settings: pool, timeouts and session guards in one place."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from producers.settings import Settings


def normalize_database_url(url: str) -> str:
    """Accept the URL forms platforms hand out and pin the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got driver {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def session_options(settings: Settings) -> str:
    """Server-side guards so one stuck lock or idle transaction cannot hold a worker."""
    return " ".join(
        [
            f"-c statement_timeout={settings.statement_timeout_ms}",
            f"-c lock_timeout={settings.lock_timeout_ms}",
            f"-c idle_in_transaction_session_timeout={settings.idle_in_transaction_timeout_ms}",
        ]
    )


def build_engine(settings: Settings, *, url: str | None = None, **overrides: object) -> Engine:
    """An engine with the project's pool and per-connection settings."""
    connect_args: dict[str, object] = {
        "application_name": settings.application_name,
        "options": session_options(settings),
        "connect_timeout": settings.db_connect_timeout_seconds,
    }
    if settings.db_sslmode:
        connect_args["sslmode"] = settings.db_sslmode
    options: dict[str, object] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.pool_max_overflow,
        "pool_timeout": settings.pool_timeout_seconds,
        "pool_recycle": settings.pool_recycle_seconds,
        "pool_pre_ping": settings.pool_pre_ping,
        "connect_args": connect_args,
    }
    options.update(overrides)
    return create_engine(normalize_database_url(url or settings.resolved_database_url()), **options)


def describe_url(url: str) -> str:
    """The URL with any password hidden, for printing."""
    return make_url(url).render_as_string(hide_password=True)
