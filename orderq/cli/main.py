"""The `orderq` command: publish commands, ask for outcomes, run the services."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from orderq.cli import backup as _backup  # noqa: F401  (adds db backup/restore/verify)
from orderq.cli import db_analyze as _db_analyze  # noqa: F401  (adds `db analyze`)
from orderq.cli import demo, ops, stack
from orderq.cli import publish_loans as _loans  # noqa: F401  (adds loan subcommands)
from orderq.cli.api_keys import api_keys_app
from orderq.cli.db import db_app
from orderq.cli.dead_letters import dead_letters_app
from orderq.cli.errors import OrderqGroup
from orderq.cli.flower import flower
from orderq.cli.health import health
from orderq.cli.listings import list_app
from orderq.cli.maintenance import maintenance_app
from orderq.cli.metrics import metrics_app
from orderq.cli.orders import orders_app
from orderq.cli.publish import publish_app, publish_file
from orderq.cli.quarantine import quarantine_app
from orderq.cli.search import search_app
from orderq.cli.seed import seed_command
from orderq.cli.serve import serve
from orderq.cli.status import status

app = typer.Typer(
    name="orderq",
    help="Exactly-once order and loan commands: publish, check, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OrderqGroup,
)
# Commands in the root help, grouped by what a user comes to do (in this order).
START, PUBLISH, READ = "Try it", "Publish and follow up", "Search and list"
RUN, LOOK = "Run the services", "Operate"
app.command("demo", rich_help_panel=START)(demo.demo)
app.command("up", rich_help_panel=START)(stack.up)
app.command("down", rich_help_panel=START)(stack.down)
app.add_typer(publish_app, name="publish", rich_help_panel=PUBLISH)
app.command("publish-file", rich_help_panel=PUBLISH)(publish_file)
app.command("status", rich_help_panel=PUBLISH)(status)
app.add_typer(orders_app, name="orders", rich_help_panel=PUBLISH)
app.add_typer(dead_letters_app, name="dead-letters", rich_help_panel=PUBLISH)
app.add_typer(quarantine_app, name="quarantine", rich_help_panel=LOOK)
app.add_typer(search_app, name="search", rich_help_panel=READ)
app.add_typer(list_app, name="list", rich_help_panel=READ)
app.command("seed", rich_help_panel=READ)(seed_command)
app.command("migrate", rich_help_panel=RUN)(ops.migrate)
app.command("worker", rich_help_panel=RUN)(ops.worker)
app.add_typer(maintenance_app, name="maintenance", rich_help_panel=RUN)
app.command("beat", rich_help_panel=RUN)(ops.beat)
app.command("flower", rich_help_panel=RUN)(flower)
app.command("serve", rich_help_panel=RUN)(serve)
app.add_typer(metrics_app, name="metrics", rich_help_panel=RUN)
app.command("health", rich_help_panel=LOOK)(health)
app.add_typer(db_app, name="db", rich_help_panel=LOOK)
app.add_typer(api_keys_app, name="api-keys", rich_help_panel=LOOK)


def installed_version() -> str:
    """The version of the installed orderq distribution."""
    try:
        return version("orderq")
    except PackageNotFoundError:
        return "unknown (orderq is not installed: pip install .)"


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"orderq {installed_version()}")
        raise typer.Exit()


@app.callback()
def root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """Exactly-once order and loan commands: publish, check, run."""


def main() -> None:
    app()
