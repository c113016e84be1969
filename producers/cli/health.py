"""`orderq health`: is this deployment able to run commands? Exit 1 if not.

Checks, in order: the broker accepts a connection, the database answers, its schema
is at the latest migration, and at least one worker answers a ping over the broker.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Annotated

import typer
from rich.table import Table

from producers.cli.console import console, settings_or_fail
from producers.database import describe_url, normalize_database_url
from producers.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _one_line(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {' '.join(str(error).split())}"[:300]


def check_broker(settings: Settings, timeout: float) -> Check:
    from kombu import Connection

    url = settings.resolved_broker_url()
    try:
        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:
        return Check("broker", False, f"{describe_url(url)} unreachable: {_one_line(error)}")
    return Check("broker", True, describe_url(url))


def check_database(settings: Settings, timeout: float) -> tuple[Check, Check]:
    """Reachability and migration state (the second needs the first)."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, pool, text

    from producers.cli.ops import ALEMBIC_INI

    url = settings.resolved_database_url()
    engine = create_engine(
        normalize_database_url(url),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": max(1, round(timeout))},
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception as error:
        reachable = Check("database", False, f"{describe_url(url)}: {_one_line(error)}")
        return reachable, Check("migrations", False, "not checked: database unreachable")
    finally:
        engine.dispose()
    heads = set(ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_heads())
    reachable = Check("database", True, describe_url(url))
    if current == heads:
        return reachable, Check("migrations", True, f"at head {', '.join(sorted(heads))}")
    shown = ", ".join(sorted(current)) or "no migration applied"
    return reachable, Check(
        "migrations",
        False,
        f"database at {shown}, code expects {', '.join(sorted(heads))}: run `orderq migrate`",
    )


def check_workers(settings: Settings, timeout: float) -> Check:
    from celery import Celery

    app = Celery("orderq-health", broker=settings.resolved_broker_url(), set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    try:
        replies = app.control.ping(timeout=timeout)
    except Exception as error:
        return Check("workers", False, f"ping failed: {_one_line(error)}")
    finally:
        app.close()
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return Check("workers", False, f"no worker answered a ping within {timeout:g}s")
    return Check("workers", True, f"{len(names)} answered: {', '.join(names)}")


def run_checks(settings: Settings, timeout: float) -> list[Check]:
    broker = check_broker(settings, timeout)
    database, migrations = check_database(settings, timeout)
    workers = (
        check_workers(settings, timeout)
        if broker.ok
        else Check("workers", False, "not checked: broker unreachable")
    )
    return [broker, database, migrations, workers]


def health(
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=60, help="Seconds per check.")
    ] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check broker, database, migrations and workers; exit 1 if anything is unhealthy."""
    settings = settings_or_fail()
    checks = run_checks(settings, timeout)
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
        raise typer.Exit(1)
