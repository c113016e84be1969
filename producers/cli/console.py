"""Shared console output and the one way the CLI reports a user error."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from producers.database import describe_url
from producers.settings import Settings, get_settings

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line to stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_fail() -> Settings:
    """The settings, or a readable error naming the bad environment variable."""
    try:
        return get_settings()
    except Exception as error:  # pydantic's ValidationError, formatted for one line
        fail(f"bad configuration: {' '.join(str(error).split())}")


def announce_targets(settings: Settings) -> None:
    """Say which database and broker this command talks to (on stderr)."""
    err_console.print(
        f"[dim]database {describe_url(settings.resolved_database_url())} · "
        f"broker {describe_url(settings.resolved_broker_url())}[/]",
        highlight=False,
    )
