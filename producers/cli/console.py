"""Shared console output and the one way the CLI reports a user error."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from producers.database import describe_url
from producers.settings import ConfigurationError, Settings, get_settings

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line to stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_fail() -> Settings:
    """The settings, or a readable error naming the bad environment variable."""
    try:
        return get_settings()
    except Exception as error:  # pydantic's ValidationError, formatted for one line
        fail(f"bad configuration: {' '.join(str(error).split())}")


def describe_target(url: str) -> str:
    """A URL for printing: password hidden, embedded servers named as such."""
    from producers.embedded import is_embedded

    if url.startswith("redis+socket://"):
        where = url.removeprefix("redis+socket://").split("?", 1)[0]
        return f"embedded Redis ({where})" if is_embedded(url) else f"Redis at {where}"
    if is_embedded(url):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        return f"embedded PostgreSQL ({parsed.database} at {parsed.query.get('host')})"
    return describe_url(url)


def _say_if_starting(settings: Settings) -> None:
    from producers.embedded import installed, running_servers

    if installed() and len(running_servers(settings.data_dir)) < 2:
        err_console.print(
            f"[dim]starting the embedded PostgreSQL and Redis in {settings.data_dir} …[/]",
            highlight=False,
        )


def announce_targets(settings: Settings) -> tuple[str, str]:
    """Resolve the database and broker this command uses and say which (on stderr).

    With no URL configured this starts the embedded servers if they are not running,
    and puts their URLs in this process's environment, so every child process it
    starts (worker, beat, Flower) uses the same servers. Returns (database, broker).
    """
    import os

    from producers.embedded import EmbeddedServerError

    try:
        if settings.uses_embedded_servers:
            _say_if_starting(settings)
        database, broker = settings.resolved_database_url(), settings.resolved_broker_url()
    except (ConfigurationError, EmbeddedServerError) as error:
        fail(str(error), code=1)
    if settings.uses_embedded_servers:
        os.environ["DATABASE_URL"] = database
        os.environ["CELERY_BROKER_URL"] = broker
    err_console.print(
        f"[dim]database {describe_target(database)} · broker {describe_target(broker)}[/]",
        highlight=False,
    )
    return database, broker
