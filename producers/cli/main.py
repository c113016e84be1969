"""The `orderq` command: publish commands, ask for outcomes, run the services."""

from __future__ import annotations

import typer

from producers.cli import ops
from producers.cli.dead_letters import dead_letters_app
from producers.cli.publish import publish_app, publish_file
from producers.cli.status import status
from producers.cli.stuck import republish_stuck_command

app = typer.Typer(
    name="orderq",
    help="Exactly-once order and loan commands: publish, check, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(publish_app, name="publish")
app.command("publish-file")(publish_file)
app.command("status")(status)
app.add_typer(dead_letters_app, name="dead-letters")
app.command("republish-stuck")(republish_stuck_command)
app.command("migrate")(ops.migrate)
app.command("worker")(ops.worker)
app.command("beat")(ops.beat)
app.command("flower")(ops.flower)


def main() -> None:
    app()
