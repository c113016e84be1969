"""`orderq maintenance …`: list the scheduled jobs, run one now, or serve their queue."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.table import Table

from orderq.cli.console import (
    FAILED,
    console,
    describe_failure,
    fail,
    resolved_settings,
    settings_or_fail,
)
from orderq.cli.ops import LogLevelOption, run_celery

maintenance_app = typer.Typer(
    help="Scheduled maintenance (beat sends these to the maintenance queue).",
    no_args_is_help=True,
)


@maintenance_app.command("list")
def list_jobs() -> None:
    """Every maintenance job, how often beat sends it and the setting that says so."""
    from worker.service.maintenance.catalog import JOBS

    settings = settings_or_fail()
    table = Table()
    for column in ("job", "every", "setting"):
        table.add_column(column, no_wrap=True)
    table.add_column("what it does")
    for job in JOBS:
        interval = job.interval(settings)
        every = f"{interval} s" if interval else "[dim]off[/]"
        table.add_row(job.name, every, f"ORDERQ_{job.schedule_setting.upper()}", job.summary)
    console.print(table)


@maintenance_app.command("run")
def run_job(
    name: Annotated[
        str, typer.Argument(metavar="JOB", help="Job name, see `orderq maintenance list`.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run one maintenance job now, in this process (it still takes its advisory lock)."""
    from worker.service.maintenance.catalog import JOBS_BY_NAME

    job = JOBS_BY_NAME.get(name)
    if job is None:
        fail(f"no maintenance job {name!r} (known: {', '.join(sorted(JOBS_BY_NAME))})")
    resolved_settings(quiet=as_json)  # embedded servers, if any, into the environment
    from worker.entrypoints.celery_app import app

    # the report is printed below; the job's own INFO line would only repeat it
    logging.getLogger().setLevel(logging.WARNING)

    try:
        report = job.perform(app.services.maintenance)
    except Exception as error:
        fail(f"{name} failed: {describe_failure(error)}", code=FAILED)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str))
    else:
        console.print_json(json.dumps(report.as_dict(), default=str))


@maintenance_app.command("worker")
def maintenance_worker(
    loglevel: LogLevelOption = "INFO",
) -> None:
    """Serve the maintenance queue (one process: jobs are sequential by design)."""
    settings = resolved_settings()
    run_celery(
        [
            "worker",
            "--concurrency=1",
            # jobs are long and few: reserve one at a time, so another maintenance
            # worker takes the next (the command queue's prefetch is a batch)
            "--prefetch-multiplier=1",
            f"--loglevel={loglevel}",
            f"--queues={settings.maintenance_queue}",
            "--pool=prefork",
            "--hostname=maintenance@%h",
        ]
    )
