"""Create and migrate test databases; read the rows tests assert on."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orderq.schema import ensure_database_exists, upgrade_to_head
from producers.database import normalize_database_url


def prepare_database(url: str) -> None:
    ensure_database_exists(url)
    upgrade_to_head(url)


def drop_database(url: str) -> None:
    """Drop a database, ending its sessions (nothing left behind)."""
    target = make_url(normalize_database_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def recreate_empty_database(url: str) -> None:
    """Drop (terminating its connections) and re-create an empty database."""
    target = make_url(normalize_database_url(url))
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
