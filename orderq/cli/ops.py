"""Running orderq: `migrate`, `worker`, `beat` (Flower lives in flower.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from orderq.cli.console import FAILED, console, describe_failure, fail, resolved_settings
from orderq.cli.values import parse_log_level, seconds, whole_number
from producers.database import describe_url

LogLevelOption = Annotated[
    str,
    typer.Option(
        "--loglevel",
        "-l",
        parser=parse_log_level,
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL.",
    ),
]


ConcurrencyOption = Annotated[
    int,
    typer.Option(
        "--concurrency", "-c", parser=whole_number(1, 256), metavar="N", help="Worker processes."
    ),
]


def migrate_or_fail(database_url: str, wait: float = 0) -> str:
    """Create the database if needed and upgrade it to head; exit 1 saying why if not."""
    # imported here: Alembic is needed by migrate, demo and up, not by every command
    from orderq.schema import DatabaseNotReady, ensure_database_exists, upgrade_to_head

    try:
        if ensure_database_exists(database_url, wait_seconds=wait):
            console.print(f"created database {describe_url(database_url)}")
        revision = upgrade_to_head(database_url)
    except DatabaseNotReady as error:
        fail(str(error), code=FAILED)
    except Exception as error:
        fail(f"migration failed: {describe_failure(error)}", code=FAILED)
    console.print(f"database is at revision [bold]{revision}[/] (head)")
    return revision


def run_celery(arguments: list[str]) -> None:
    """Run a Celery command (worker, beat) of orderq's app; exit with its status.

    Celery's `app.start`/`app.worker_main` drop the status click returns, so a worker
    that stopped on an error exited 0 and looked like a clean stop to its supervisor;
    this runs Celery's command line the way `app.start` does and keeps the status.
    """
    from celery.bin.celery import celery as celery_command

    from worker.entrypoints.celery_app import app

    app_option = next(p for p in celery_command.params if p.name == "app")  # as app.start
    app_option.default = app
    try:
        code = celery_command.main(args=arguments, standalone_mode=False)
    finally:
        app_option.default = None
    if code:
        raise typer.Exit(code)


def migrate(
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            parser=seconds(0, 3600),
            metavar="SECONDS",
            help="Seconds to wait for a database server that is still starting.",
        ),
    ] = 60.0,
) -> None:
    """Create the database if needed and upgrade it to the latest schema (through
    ORDERQ_ADMIN_DATABASE_URL when set: index builds must not go through PgBouncer)."""
    settings = resolved_settings()
    migrate_or_fail(settings.require_admin_database_url(), wait)


def worker(
    concurrency: ConcurrencyOption = 2,
    loglevel: LogLevelOption = "INFO",
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            metavar="QUEUES",
            help="Queues to consume, comma-separated (default: ORDERQ_COMMAND_QUEUE).",
        ),
    ] = None,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            "-n",
            help="Node name (NAME@host); give each worker process on one host its own.",
        ),
    ] = "worker",
) -> None:
    """Start a command worker (same as `celery -A worker.entrypoints.celery_app worker`).

    Exits with the worker's status: non-zero when it stopped on an error, so a
    supervisor (`orderq up`, systemd, Kubernetes) restarts it.
    """
    if not name or "@" in name or any(c.isspace() for c in name):
        fail(f"--name must be a plain name without '@' or spaces, got {name!r}")
    settings = resolved_settings()
    run_celery(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--queues={queues or settings.command_queue}",
            "--pool=prefork",
            f"--hostname={name}@%h",
        ]
    )


def beat(
    loglevel: LogLevelOption = "INFO",
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            metavar="FILE",
            help="Ignored: beat keeps its state in PostgreSQL.",
        ),
    ] = None,
) -> None:
    """Start Celery beat, the maintenance scheduler (one per host is fine: each run is
    claimed in PostgreSQL before it is sent)."""
    resolved_settings()  # embedded servers, if any, into the environment
    arguments = ["beat", f"--loglevel={loglevel}"]
    if schedule:
        arguments.append(f"--schedule={schedule}")
    run_celery(arguments)
