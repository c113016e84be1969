"""Running orderq: `migrate`, `worker`, `beat` (Flower lives in flower.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from producers.cli.console import announce_targets, console, fail, settings_or_fail
from producers.database import describe_url, normalize_database_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def ensure_database_exists(url: str) -> bool:
    """Create the target database if the server has no such database; True if created."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(normalize_database_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote(target.database or "")
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        admin.dispose()


def upgrade_to_head(url: str) -> str:
    """Run every pending migration; return the revision now current."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    engine = create_engine(normalize_database_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() or "base"
    finally:
        engine.dispose()


def migrate() -> None:
    """Create the database if needed and upgrade it to the latest schema."""
    settings = settings_or_fail()
    announce_targets(settings)
    url = settings.resolved_database_url()
    try:
        if ensure_database_exists(url):
            console.print(f"created database {describe_url(url)}")
        revision = upgrade_to_head(url)
    except Exception as error:
        fail(f"migration failed: {error.__class__.__name__}: {error}", code=1)
    console.print(f"database is at revision [bold]{revision}[/] (head)")


def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 2,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    queues: Annotated[
        str | None, typer.Option("--queues", "-Q", help="Default: the command queue.")
    ] = None,
) -> None:
    """Start a command worker (same as `celery -A worker.entrypoints.celery_app worker`)."""
    settings = settings_or_fail()
    announce_targets(settings)
    from worker.entrypoints.celery_app import app

    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--queues={queues or settings.command_queue}",
            "--pool=prefork",
        ]
    )


def beat(
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    schedule: Annotated[
        str | None,
        typer.Option("--schedule", help="Beat's state file (default: celerybeat-schedule)."),
    ] = None,
) -> None:
    """Start Celery beat, the maintenance scheduler (run exactly one)."""
    settings = settings_or_fail()
    announce_targets(settings)
    from worker.entrypoints.celery_app import app

    arguments = ["beat", f"--loglevel={loglevel}"]
    if schedule:
        arguments.append(f"--schedule={schedule}")
    app.start(arguments)
