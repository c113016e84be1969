"""Running orderq: `migrate`, `worker`, `beat` (Flower lives in flower.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from orderq.cli.console import console, fail, resolved_settings
from orderq.schema import DatabaseNotReady, ensure_database_exists, upgrade_to_head
from producers.database import describe_url


def migrate_or_fail(database_url: str, wait: float = 0) -> str:
    """Create the database if needed and upgrade it to head; exit 1 saying why if not."""
    try:
        if ensure_database_exists(database_url, wait_seconds=wait):
            console.print(f"created database {describe_url(database_url)}")
        revision = upgrade_to_head(database_url)
    except DatabaseNotReady as error:
        fail(str(error), code=1)
    except Exception as error:
        fail(f"migration failed: {error.__class__.__name__}: {error}", code=1)
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
            min=0,
            max=3600,
            help="Seconds to wait for a database server that is still starting.",
        ),
    ] = 60.0,
) -> None:
    """Create the database if needed and upgrade it to the latest schema."""
    settings = resolved_settings()
    assert settings.database_url is not None
    migrate_or_fail(settings.database_url, wait)


def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 2,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    queues: Annotated[
        str | None, typer.Option("--queues", "-Q", help="Default: the command queue.")
    ] = None,
) -> None:
    """Start a command worker (same as `celery -A worker.entrypoints.celery_app worker`).

    Exits with the worker's status: non-zero when it stopped on an error, so a
    supervisor (`orderq up`, systemd, Kubernetes) restarts it.
    """
    settings = resolved_settings()
    run_celery(
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
    resolved_settings()  # embedded servers, if any, into the environment
    arguments = ["beat", f"--loglevel={loglevel}"]
    if schedule:
        arguments.append(f"--schedule={schedule}")
    run_celery(arguments)
