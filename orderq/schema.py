"""The database schema: create the database, run the migrations, say where it stands.

The migrations ship inside the installed package (`orderq.migrations`, built from the
repository's top-level `migrations/`), so `orderq migrate` works from a wheel as well
as from a checkout; no alembic.ini is needed.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from producers.database import normalize_database_url


def migrations_folder() -> Path:
    """Where the Alembic environment and versions are installed."""
    return Path(str(files("orderq.migrations")))


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the shipped migrations (and `url`, if given)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_folder()))
    config.set_main_option("path_separator", "os")
    config.attributes["configure_logging"] = False
    if url is not None:
        config.attributes["database_url"] = url
    return config


def head_revisions() -> set[str]:
    """The revisions this code expects the database to be at."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(url: str, connect_timeout: float = 10) -> set[str]:
    """The revisions the database at `url` is at (empty before the first migration)."""
    engine = create_engine(
        normalize_database_url(url),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": max(1, round(connect_timeout))},
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def _server_not_ready(error: BaseException) -> bool:
    """Connection refused, or the server is starting up or shutting down."""
    import psycopg

    original = getattr(error, "orig", error)
    state = getattr(original, "sqlstate", None)
    if state in ("57P03", "57P01", "53300"):  # starting up, shutting down, too many
        return True
    return state is None and isinstance(original, psycopg.OperationalError)


class DatabaseNotReady(RuntimeError):
    """The database server did not accept connections within the wait."""


def ensure_database_exists(url: str, wait_seconds: float = 0) -> bool:
    """Create the target database if the server has none of that name; True if created.

    Waits up to `wait_seconds` for a server that is still starting (a container whose
    PostgreSQL has not finished its first boot), then raises `DatabaseNotReady`.
    """
    target = make_url(normalize_database_url(url))
    admin = create_engine(
        target.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": 5},
    )

    def create() -> bool:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote(target.database or "")
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True

    try:
        for attempt in Retrying(
            retry=retry_if_exception(_server_not_ready),
            stop=stop_after_delay(wait_seconds),
            wait=wait_exponential(multiplier=0.25, max=2),
            reraise=True,
        ):
            with attempt:
                return create()
    except Exception as error:
        if _server_not_ready(error):
            waited = f" within {wait_seconds:g}s" if wait_seconds else ""
            raise DatabaseNotReady(
                f"the database server at {target.render_as_string(hide_password=True)} "
                f"did not accept connections{waited}: "
                f"{' '.join(str(getattr(error, 'orig', error)).split())[:300]}"
            ) from error
        raise
    finally:
        admin.dispose()
    raise AssertionError("unreachable")  # pragma: no cover


def upgrade_to_head(url: str) -> str:
    """Run every pending migration; return the revision now current."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    return ", ".join(sorted(current_revisions(url))) or "base"
