"""What `orderq search` and `orderq list` share: one Reader per command, one way to
print a page (a table, or `{"results": [...], "next_cursor": ...}` with --json), and
read errors as one line (exit 2 for bad input, 1 when the database fails)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from orderq.cli.console import console, describe_failure, fail, resolved_settings
from orderq.cli.values import whole_number
from orderq.read import MAX_LIMIT, Page, Reader, ReadError
from producers.database import build_engine

if TYPE_CHECKING:
    from orderq.settings import Settings

T = TypeVar("T")

Limit = Annotated[
    int,
    typer.Option(
        "--limit",
        parser=whole_number(1, MAX_LIMIT),
        metavar="N",
        help=f"Results per page (1-{MAX_LIMIT}).",
    ),
]
Cursor = Annotated[
    str | None, typer.Option("--cursor", help="Continue after the page that printed it.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def read_with(
    call: Callable[[Reader], T], *, quiet: bool = False, settings: Settings | None = None
) -> T:
    """Run one read on the configured database (`settings` as read, or read here); bad
    input → exit 2, failures → exit 1."""
    settings = resolved_settings(settings, quiet=quiet)
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        return call(Reader.from_settings(engine, settings))
    except ReadError as error:
        fail(str(error), code=2)
    except Exception as error:
        fail(describe_failure(error), code=1)
    finally:
        engine.dispose()


def show(page: Page, columns: Sequence[tuple[str, str]], as_json: bool, *, empty: str) -> None:
    """Print `page`: `columns` are (result field, heading)."""
    if as_json:
        typer.echo(json.dumps(page.as_dict(), ensure_ascii=False))
        return
    table = Table(*(heading for _, heading in columns))
    for result in page.results:
        table.add_row(*(escape(_cell(result.get(field))) for field, _ in columns))
    if page.results:
        console.print(table)
    else:
        console.print(f"[dim]{empty}[/]")
    if page.next_cursor:
        console.print(f"next page: --cursor '{page.next_cursor}'", highlight=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def parse_moment(flag: str, value: str | None, default: datetime | None) -> datetime | None:
    """An ISO 8601 date or time (UTC when it names no zone), or `default`."""
    if value is None:
        return default
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{flag} {value!r} is not a date or time (like 2026-11-29 or 2026-11-29T08:00)")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """[since, until) as typed (None where not given: the read fills in now and the
    `--days` before it, and the printed cursor keeps that window)."""
    start = parse_moment("--since", since, None)
    end = parse_moment("--until", until, None)
    if start is not None and end is not None and start >= end:
        fail("--since must be before --until")
    return start, end
