"""`orderq health`: is this deployment able to run commands? Exit 1 if not.

Checks, in order: the broker accepts a connection, the database answers, its schema
is at the latest migration, and both queues that need a consumer have one: the command
queue (a command worker) and the maintenance queue (the maintenance worker). A
container healthcheck thus catches a dead command worker even while the maintenance
worker still answers. `--queue commands` / `--queue maintenance` check one queue's
consumers only: each worker container's healthcheck asks about the queue it serves, so
a dead maintenance worker does not mark the command workers unhealthy (or the reverse).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from orderq.cli.console import FAILED, console, resolved_settings
from orderq.cli.values import seconds
from orderq.settings import Settings
from producers.database import describe_url


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _one_line(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {' '.join(str(error).split())}"[:300]


def check_broker(settings: Settings, timeout: float) -> Check:
    from kombu import Connection

    url = settings.require_broker_url()
    try:
        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:
        return Check("broker", False, f"{describe_url(url)} unreachable: {_one_line(error)}")
    return Check("broker", True, describe_url(url))


def check_database(settings: Settings, timeout: float) -> tuple[Check, Check]:
    """Reachability and migration state (the second needs the first)."""
    from orderq.schema import current_revisions, head_revisions

    url = settings.require_database_url()
    try:
        current = current_revisions(url, connect_timeout=timeout)
    except Exception as error:
        reachable = Check("database", False, f"{describe_url(url)}: {_one_line(error)}")
        return reachable, Check("migrations", False, "not checked: database unreachable")
    heads = head_revisions()
    reachable = Check("database", True, describe_url(url))
    if current == heads:
        return reachable, Check("migrations", True, f"at head {', '.join(sorted(heads))}")
    shown = ", ".join(sorted(current)) or "no migration applied"
    return reachable, Check(
        "migrations",
        False,
        f"database at {shown}, code expects {', '.join(sorted(heads))}: run `orderq migrate`",
    )


def queue_consumers(settings: Settings, timeout: float) -> dict[str, list[str]]:
    """Queue name -> the workers consuming it, as the workers themselves answer."""
    from celery import Celery

    app = Celery("orderq-health", broker=settings.require_broker_url(), set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    finally:
        app.close()
    consumers: dict[str, list[str]] = {}
    for worker, queues in replies.items():
        for queue in queues or []:
            consumers.setdefault(queue.get("name", "?"), []).append(worker)
    return consumers


class Queues(StrEnum):
    """Which queues `orderq health` requires a consumer for."""

    commands = "commands"
    maintenance = "maintenance"
    all = "all"


def needed_consumers(settings: Settings, queues: Queues) -> list[tuple[str, str, str]]:
    """(check name, queue, the command that serves it) for each queue to check."""
    needed = []
    if queues in (Queues.commands, Queues.all):
        needed.append(("command workers", settings.command_queue, "orderq worker"))
    if queues in (Queues.maintenance, Queues.all):
        needed.append(
            ("maintenance worker", settings.maintenance_queue, "orderq maintenance worker")
        )
    return needed


def check_consumers(settings: Settings, timeout: float, queues: Queues = Queues.all) -> list[Check]:
    """One check per queue that needs a consumer: commands, maintenance, or both."""
    needed = needed_consumers(settings, queues)
    try:
        consumers = queue_consumers(settings, timeout)
    except Exception as error:
        return [Check(name, False, f"could not ask: {_one_line(error)}") for name, _, _ in needed]
    checks = []
    for name, queue, command in needed:
        workers = sorted(consumers.get(queue, []))
        if workers:
            checks.append(Check(name, True, f"{queue}: {len(workers)} ({', '.join(workers)})"))
        else:
            checks.append(
                Check(
                    name,
                    False,
                    f"nothing consumes {queue} (no answer within {timeout:g}s): start `{command}`",
                )
            )
    return checks


def run_checks(settings: Settings, timeout: float, queues: Queues = Queues.all) -> list[Check]:
    broker = check_broker(settings, timeout)
    database, migrations = check_database(settings, timeout)
    if broker.ok:
        consumers = check_consumers(settings, timeout, queues)
    else:
        consumers = [
            Check(name, False, "not checked: broker unreachable")
            for name, _, _ in needed_consumers(settings, queues)
        ]
    return [broker, database, migrations, *consumers]


def health(
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", parser=seconds(0.1, 60), metavar="SECONDS", help="Seconds per check."
        ),
    ] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    queues: Annotated[
        Queues,
        typer.Option(
            "--queue",
            case_sensitive=False,
            help="Whose consumers to require: the command queue, the maintenance queue, or "
            "both (a worker container checks the queue it serves).",
        ),
    ] = Queues.all,
) -> None:
    """Is this deployment able to run commands? Exit 1 if not.

    Checks the broker, the database, that its schema is at the latest migration, and
    that the command queue and the maintenance queue each have a consumer.
    """
    settings = resolved_settings(quiet=True)
    checks = run_checks(settings, timeout, queues)
    healthy = all(check.ok for check in checks)
    if as_json:
        typer.echo(json.dumps({"healthy": healthy, "checks": [asdict(c) for c in checks]}))
    else:
        table = Table(show_header=False, box=None)
        for check in checks:
            mark = "[green]ok[/]" if check.ok else "[bold red]FAIL[/]"
            table.add_row(mark, check.name, check.detail)
        console.print(table)
        console.print("[green]healthy[/]" if healthy else "[bold red]unhealthy[/]")
    if not healthy:
        raise typer.Exit(FAILED)
