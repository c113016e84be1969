"""`orderq status KEY`: what happened to a command."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from orderq.cli.console import FAILED, console, describe_failure, fail, resolved_settings
from orderq.cli.values import wait_option
from producers.database import build_engine
from producers.outcomes import CommandStatus, lookup, wait_for

STYLE = {
    "succeeded": "green",
    "rejected": "yellow",
    "failed": "red",
    "queued": "cyan",
    "running": "cyan",
    "unknown": "dim",
}


def _render(status: CommandStatus) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("key", status.key)
    table.add_row("status", f"[{STYLE[status.status]}]{status.status}[/]")
    for name, value in status.as_dict().items():
        if name in ("key", "status", "key_reuse") or value in (None, {}, ""):
            continue
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(name, shown)
    reuse = status.key_reuse
    if reuse is not None:
        table.add_row(
            "key reused",
            f"[yellow]{reuse.refusals} later delivery(ies) with a different payload refused "
            f"({reuse.reason}); last {reuse.last_refused_at:%Y-%m-%d %H:%M:%S %Z}, "
            f"{reuse.command_type} with fingerprint {reuse.fingerprint}[/]",
        )
    console.print(table)


def status(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The idempotency key to look up.")],
    wait: Annotated[float, wait_option("Wait up to SECONDS for a final outcome.")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the outcome of KEY: unknown, queued, running, succeeded, rejected or failed.

    Exits 0 when it printed a status; with --wait, exits 1 if no final outcome came in time.
    """
    settings = resolved_settings()
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        current = wait_for(engine, key, wait) if wait else lookup(engine, key)
    except Exception as error:
        fail(f"could not read the outcome of {key}: {describe_failure(error)}", code=FAILED)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(current.as_dict()))
    else:
        _render(current)
    if wait and not current.is_terminal:
        raise typer.Exit(FAILED)
