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
    """Create the database if needed and upgrade it to the latest schema."""
    settings = resolved_settings()
    assert settings.database_url is not None
    migrate_or_fail(settings.database_url, wait)


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
) -> None:
    """Start a command worker (same as `celery -A worker.entrypoints.celery_app worker`)."""
    settings = resolved_settings()
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
    loglevel: LogLevelOption = "INFO",
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            metavar="FILE",
            help="Beat's state file (default: celerybeat-schedule in this folder).",
        ),
    ] = None,
) -> None:
    """Start Celery beat, the maintenance scheduler (run exactly one)."""
    resolved_settings()  # embedded servers, if any, into the environment
    from worker.entrypoints.celery_app import app

    arguments = ["beat", f"--loglevel={loglevel}"]
    if schedule:
        arguments.append(f"--schedule={schedule}")
    app.start(arguments)
