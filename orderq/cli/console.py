"""Shared console output and the one way the CLI reports a problem.

Exit codes, the same for every command (docs/cli.md):

- `USAGE` (2): the command line is wrong and orderq says so before asking any server —
  an unknown command or option, a missing or malformed value, a value the command
  contract refuses, a file that is not there, settings that cannot be read. Typing
  something else fixes it.
- `FAILED` (1): orderq asked and the answer was no — what you named does not exist
  (an order, a dead letter), is in the wrong state, a server is unreachable, lines of a
  file were refused, a wait ran out, a check failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from orderq.servers import resolve_servers
from orderq.settings import Settings
from producers.database import describe_url, normalize_database_url
from producers.errors import ConfigurationError

T = TypeVar("T")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

USAGE = 2
FAILED = 1


def print_error(message: str) -> None:
    """`error: MESSAGE` on stderr, one line however wide the terminal."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


# SQLSTATEs that mean "this database has no orderq schema (yet)"
_NOT_MIGRATED = {"42P01": "a table is missing", "3D000": "the database does not exist"}


def describe_failure(error: BaseException) -> str:
    """One line for an error from the database or broker: the driver's own message
    (not SQLAlchemy's wrapping with its link), and what to do if the schema is missing."""
    original = getattr(error, "orig", None) or error
    diag = getattr(original, "diag", None)  # psycopg: the server's message, without context
    text = getattr(diag, "message_primary", None) or " ".join(str(original).split())
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in _NOT_MIGRATED:
        text += f" ({_NOT_MIGRATED[sqlstate]}: run orderq migrate)"
    elif 'database "' in text and "does not exist" in text:
        text += " (orderq migrate creates it)"
    return f"{type(original).__name__}: {text}"[:500]


def is_server_failure(error: BaseException) -> bool:
    """Whether `error` says the database or the broker could not do what was asked
    (unreachable, refused, no schema): a runtime failure to report in one line, not a bug."""
    import kombu.exceptions
    import psycopg
    import sqlalchemy.exc

    if isinstance(error, sqlalchemy.exc.DBAPIError):
        error = error.orig or error
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if getattr(error, "sqlstate", None) in _NOT_MIGRATED:
        return True
    return isinstance(error, kombu.exceptions.OperationalError | ConnectionError | TimeoutError)


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Print one clear line to stderr and exit: `USAGE` (2) unless told `FAILED` (1)."""
    print_error(message)
    raise typer.Exit(code)


def _variable(name: str) -> str:
    """The environment variable that sets the settings field `name`."""
    field = Settings.model_fields.get(name)
    alias = getattr(field, "validation_alias", None) if field else None
    choices = getattr(alias, "choices", None)
    if choices:
        return str(choices[0])
    return f"ORDERQ_{name.upper()}"


def _describe_settings_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = _variable(str(item["loc"][0])) if item["loc"] else "settings"
        parts.append(f"{where}={item.get('input')!r}: {item['msg']}")
    return "; ".join(parts)


def settings_or_fail() -> Settings:
    """The settings as configured (URLs not resolved yet), or one line naming the bad
    environment variable (exit 2: the configuration is wrong, nothing was asked)."""
    try:
        settings = Settings()
    except ValidationError as error:
        fail(f"bad configuration: {_describe_settings_error(error)}")
    if settings.database_url:
        try:
            normalize_database_url(settings.database_url)
        except Exception as error:  # ValueError or SQLAlchemy's ArgumentError
            fail(f"bad configuration: {' '.join(str(error).split())}")
    return settings


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
    except ConfigurationError as error:  # one URL without the other
        fail(str(error))
    except EmbeddedServerError as error:  # not installed, or would not start
        fail(str(error), code=FAILED)
    assert resolved.database_url and resolved.broker_url
    if not quiet:
        err_console.print(
            f"[dim]database {describe_target(resolved.database_url)} · "
            f"broker {describe_target(resolved.broker_url)}[/]",
            highlight=False,
        )
    return resolved


def attempt(action: Callable[[], T], refused: type[Exception], unsent: str) -> T:
    """`action()`, its errors as one line, all exit 1 (the servers said no): `refused`
    (no such key, or not in a state that allows it), a publish error (`unsent` says what
    that leaves behind) or a database error."""
    from producers.errors import PublishError

    try:
        return action()
    except refused as error:
        fail(str(error), code=FAILED)
    except PublishError as error:
        fail(f"{error} — {unsent}", code=FAILED)
    except Exception as error:  # the database is unreachable or refused the statement
        fail(describe_failure(error), code=FAILED)


def operator_for(reason: str | None, by: str | None) -> str:
    """Who an audited operator action is recorded as (default: the user name); exits 2 if
    the action needs a reason and was given an empty one."""
    import getpass

    if reason is not None and not reason.strip():
        fail("--reason must not be empty: it is kept for audit")
    return by or getpass.getuser()
