"""`orderq dead-letters list|show|replay|discard`: commands that ended `failed`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from orderq.admin.dead_letters import DeadLetter, DeadLetterError, DeadLetters
from orderq.cli.console import FAILED, attempt, console, operator_for, settings_or_fail
from orderq.cli.values import parse_command_type, wait_option, whole_number
from producers.database import build_engine
from producers.outcomes import wait_for
from producers.publisher import Publisher

dead_letters_app = typer.Typer(
    help="Commands that ended failed: list, show, replay or discard them.",
    no_args_is_help=True,
)

KeyArgument = Annotated[str, typer.Argument(metavar="KEY", help="The idempotency key.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
T = TypeVar("T")


class StateChoice(StrEnum):
    failed = "failed"
    discarded = "discarded"
    all = "all"


@contextmanager
def _store() -> Iterator[DeadLetters]:
    settings = settings_or_fail()
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        yield DeadLetters(engine)
    finally:
        engine.dispose()


def _attempt(action: Callable[[], T]) -> T:
    return attempt(action, DeadLetterError, "the command is still failed")


def _short(text: str | None, width: int = 70) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dead_letters_app.command("list")
def list_dead_letters(
    state: Annotated[StateChoice, typer.Option("--state", help="Which ones.")] = StateChoice.failed,
    command_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            parser=parse_command_type,
            help="Only this command type, e.g. place_order.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", parser=whole_number(1, 10_000), metavar="N", help="At most N.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Dead letters, newest failure first (default: the failed ones)."""
    with _store() as store:
        letters = _attempt(lambda: store.list(state.value, command_type, limit))
    if as_json:
        typer.echo(json.dumps([letter.as_dict() for letter in letters]))
        return
    if not letters:
        label = "" if state is StateChoice.all else f"{state.value} "
        console.print(f"no {label}dead letters")
        return
    table = Table("key", "type", "state", "attempts", "failed at", "last error / discard reason")
    for letter in letters:
        table.add_row(
            letter.key,
            letter.command_type,
            letter.state,
            str(letter.attempts),
            f"{letter.failed_at:%Y-%m-%d %H:%M:%S}" if letter.failed_at else "",
            _short(letter.discard_reason if letter.state == "discarded" else letter.last_error),
        )
    console.print(table)
    console.print(f"{len(letters)} shown (limit {limit})", style="dim")


def _render(letter: DeadLetter) -> None:
    table = Table(show_header=False, box=None)
    for name, value in letter.as_dict().items():
        if value is None:
            continue
        shown = json.dumps(value, indent=2) if isinstance(value, dict) else str(value)
        table.add_row(name, shown)
    console.print(table)


@dead_letters_app.command("show")
def show(key: KeyArgument, as_json: JsonOption = False) -> None:
    """Everything recorded about KEY: payload, attempts, last error, discard audit."""
    with _store() as store:
        letter = _attempt(lambda: store.get(key))
    if as_json:
        typer.echo(json.dumps(letter.as_dict()))
    else:
        _render(letter)


@dead_letters_app.command("replay")
def replay(
    key: KeyArgument,
    wait: Annotated[float, wait_option("Wait up to SECONDS for the new outcome.")] = 0.0,
) -> None:
    """Publish failed command KEY again with fresh attempts (same key: still runs once)."""
    settings = settings_or_fail()
    with _store() as store, Publisher(settings, track=False) as publisher:
        receipt = _attempt(lambda: store.replay(key, publisher))
        console.print(
            f"replayed [bold]{key}[/] to {receipt.queue} — check with: orderq status {key}",
            highlight=False,
        )
        if wait:
            outcome = _attempt(lambda: wait_for(store.engine, key, wait))
            console.print(f"{key}: {outcome.status}", highlight=False)
            if not outcome.is_terminal:
                raise typer.Exit(FAILED)


@dead_letters_app.command("discard")
def discard(
    key: KeyArgument,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (kept for audit).")],
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="NAME", help="Who decided (default: your user name)."),
    ] = None,
) -> None:
    """Give up on failed command KEY for good; the reason is kept for audit."""
    operator = operator_for(reason, by)
    with _store() as store:
        letter = _attempt(lambda: store.discard(key, reason, operator))
    console.print(
        f"discarded [bold]{letter.key}[/] ({letter.command_type}) by {operator}: "
        f"{letter.discard_reason}",
        highlight=False,
    )
