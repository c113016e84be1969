"""Alembic environment: the URL comes from orderq's settings, the target from the tables."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from producers.database import normalize_database_url
from worker.adapters.tables import metadata
from worker.settings import WorkerSettings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=False,
        # Index builds marked CONCURRENTLY need autocommit blocks; keep one transaction
        # per revision so a failed revision leaves nothing half-applied.
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("database_url") or WorkerSettings().require_database_url()
    engine = create_engine(normalize_database_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def run_migrations_offline() -> None:
    url = config.attributes.get("database_url") or WorkerSettings().require_database_url()
    context.configure(url=normalize_database_url(url), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
