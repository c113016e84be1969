"""Shared console output and the one way the CLI reports a user error."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from orderq.servers import resolve_servers
from orderq.settings import Settings
from producers.database import describe_url
from producers.errors import ConfigurationError

T = TypeVar("T")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line to stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_fail() -> Settings:
    """The settings as configured (URLs not resolved yet), or a readable error naming
    the bad environment variable."""
    try:
        return Settings()
    except Exception as error:  # pydantic's ValidationError, formatted for one line
        fail(f"bad configuration: {' '.join(str(error).split())}")


def describe_target(url: str) -> str:
    """A URL for printing: password hidden, embedded servers named as such."""
    from orderq.embedded import is_embedded

    if url.startswith("redis+socket://"):
        where = url.removeprefix("redis+socket://").split("?", 1)[0]
        return f"embedded Redis ({where})" if is_embedded(url) else f"Redis at {where}"
    if is_embedded(url):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        return f"embedded PostgreSQL ({parsed.database} at {parsed.query.get('host')})"
    return describe_url(url)


def _say_if_starting(settings: Settings) -> None:
    from orderq.embedded import installed, running_servers

    if installed() and len(running_servers(settings.data_dir)) < 2:
        err_console.print(
            f"[dim]starting the embedded PostgreSQL and Redis in {settings.data_dir} …[/]",
            highlight=False,
        )


def resolved_settings(settings: Settings | None = None, *, quiet: bool = False) -> Settings:
    """The settings with the database and broker this command uses, said on stderr.

    With no URL configured this starts the embedded servers if they are not running,
    and puts their URLs in this process's environment, so every child process it
    starts (worker, beat, Flower) uses the same servers.
    """
    from orderq.embedded import EmbeddedServerError

    settings = settings or settings_or_fail()
    try:
        if settings.uses_embedded_servers:
            _say_if_starting(settings)
        resolved = resolve_servers(settings)
    except (ConfigurationError, EmbeddedServerError) as error:
        fail(str(error), code=1)
    assert resolved.database_url and resolved.broker_url
    if not quiet:
        err_console.print(
            f"[dim]database {describe_target(resolved.database_url)} · "
            f"broker {describe_target(resolved.broker_url)}[/]",
            highlight=False,
        )
    return resolved


def attempt(action: Callable[[], T], refused: type[Exception], unsent: str) -> T:
    """`action()`, its errors as one line: `refused` (the operation does not apply) exits
    2; a publish error (`unsent` says what that leaves behind) or a database error, 1."""
    from producers.errors import PublishError

    try:
        return action()
    except refused as error:
        fail(str(error))
    except PublishError as error:
        fail(f"{error} — {unsent}", code=1)
    except Exception as error:  # the database is unreachable or refused the statement
        fail(f"{error.__class__.__name__}: {' '.join(str(error).split())}", code=1)


def operator_for(reason: str | None, by: str | None) -> str:
    """Who an audited operator action is recorded as (default: the user name); exits 2 if
    the action needs a reason and was given an empty one."""
    import getpass

    if reason is not None and not reason.strip():
        fail("--reason must not be empty: it is kept for audit")
    return by or getpass.getuser()
