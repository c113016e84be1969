"""The `orderq` command: publish commands, ask for outcomes, run the services."""

from __future__ import annotations

import typer

from orderq.cli import demo, ops, stack
from orderq.cli import publish_loans as _loans  # noqa: F401  (adds loan subcommands)
from orderq.cli.db import db_app
from orderq.cli.dead_letters import dead_letters_app
from orderq.cli.flower import flower
from orderq.cli.health import health
from orderq.cli.maintenance import maintenance_app
from orderq.cli.orders import orders_app
from orderq.cli.publish import publish_app, publish_file
from orderq.cli.quarantine import quarantine_app
from orderq.cli.status import status

app = typer.Typer(
    name="orderq",
    help="Exactly-once order and loan commands: publish, check, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(publish_app, name="publish")
app.add_typer(orders_app, name="orders")
app.command("publish-file")(publish_file)
app.command("status")(status)
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(quarantine_app, name="quarantine")
app.command("migrate")(ops.migrate)
app.command("worker")(ops.worker)
app.command("beat")(ops.beat)
app.command("flower")(flower)
app.command("health")(health)
app.add_typer(db_app, name="db")
app.add_typer(maintenance_app, name="maintenance")
app.command("up")(stack.up)
app.command("down")(stack.down)
app.command("demo")(demo.demo)


def main() -> None:
    app()
