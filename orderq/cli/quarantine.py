"""`orderq quarantine list|show|discard|replay`: broker messages the worker refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from orderq.admin.quarantine import (
    Quarantine,
    QuarantineError,
    decoded_body,
    safe_text,
)
from orderq.cli.console import attempt, console, operator_for, resolved_settings
from orderq.cli.values import wait_option, whole_number
from producers.database import build_engine
from producers.outcomes import wait_for
from producers.publisher import Publisher
from worker.adapters.envelope import Problem
from worker.adapters.quarantine import QuarantinedMessage

quarantine_app = typer.Typer(
    help="Broker messages the worker refused (unreadable, malformed, not orderq's): "
    "list, show, discard or replay them.",
    no_args_is_help=True,
)

IdArgument = Annotated[
    int,
    typer.Argument(
        parser=whole_number(1), metavar="ID", help="The quarantined message's number (#)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
T = TypeVar("T")


class StateChoice(StrEnum):
    quarantined = "quarantined"
    replayed = "replayed"
    discarded = "discarded"
    all = "all"


ProblemChoice = StrEnum("ProblemChoice", {problem.value: problem.value for problem in Problem})  # type: ignore[misc]


@contextmanager
def _store() -> Iterator[Quarantine]:
    settings = resolved_settings(quiet=True)
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        yield Quarantine(engine, settings)
    finally:
        engine.dispose()


def _attempt(action: Callable[[], T]) -> T:
    return attempt(action, QuarantineError, "the message stays quarantined")


def _short(text: str | None, width: int = 60) -> Text:
    flat = " ".join(safe_text(text or "", 4 * width).split())
    return Text(flat if len(flat) <= width else flat[: width - 1] + "…")


@quarantine_app.command("list")
def list_messages(
    state: Annotated[
        StateChoice, typer.Option("--state", help="Which ones.")
    ] = StateChoice.quarantined,
    problem: Annotated[
        ProblemChoice | None, typer.Option("--problem", help="Only this kind of problem.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Only messages that carried this key.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", parser=whole_number(1, 10_000), metavar="N")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Quarantined messages, the most recently seen first."""
    chosen = problem.value if problem is not None else None
    with _store() as store:
        messages = _attempt(lambda: store.list(state.value, chosen, key, limit))
    if as_json:
        typer.echo(json.dumps([_summary(message) for message in messages]))
        return
    if not messages:
        label = "" if state is StateChoice.all else f"{state.value} "
        console.print(f"no {label}messages")
        return
    table = Table("#", "last seen", "problem", "key", "task", "times", "reason")
    for message in messages:
        table.add_row(
            str(message.id),
            f"{message.last_seen_at:%Y-%m-%d %H:%M:%S}",
            message.problem,
            _short(message.idempotency_key, 30),
            _short(message.task_name, 30),
            str(message.deliveries),
            _short(message.reason),
        )
    console.print(table)
    console.print(f"{len(messages)} shown (limit {limit})", style="dim")


def _summary(message: QuarantinedMessage) -> dict[str, object]:
    data = message.as_dict()
    for name in ("headers", "properties", "body_base64"):
        data.pop(name)
    return data


@quarantine_app.command("show")
def show(
    message_id: IdArgument,
    as_json: JsonOption = False,
    full: Annotated[
        bool, typer.Option("--full", help="The whole kept body, not its first 4000 characters.")
    ] = False,
) -> None:
    """Everything kept about a message: reason, headers, properties, body (escaped)."""
    with _store() as store:
        message = _attempt(lambda: store.get(message_id))
    if as_json:
        typer.echo(json.dumps(message.as_dict()))
        return
    table = Table(show_header=False, box=None)
    fields = {
        "#": message.id,
        "state": message.state,
        "problem": message.problem,
        "reason": message.reason,
        "key": message.idempotency_key,
        "key answered": message.rejection and f"rejected: {message.rejection}",
        "task": message.task_name,
        "task id": message.task_id,
        "broker / queue": f"{message.broker} / {message.queue}",
        "content type": message.content_type,
        "content encoding": message.content_encoding,
        "delivered": f"{message.deliveries} time(s), first {_when(message.first_seen_at)}, "
        f"last {_when(message.last_seen_at)}",
        "discarded": message.discarded_at
        and f"{_when(message.discarded_at)} by {message.discarded_by}: {message.discard_reason}",
        "replayed": message.replayed_at
        and f"{_when(message.replayed_at)} by {message.replayed_by} as {message.replayed_key}",
        "headers": json.dumps(message.headers, indent=2),
        "properties": json.dumps(message.properties, indent=2),
    }
    for name, value in fields.items():
        if value not in (None, "", {}):
            table.add_row(name, Text(safe_text(str(value))))
    decoded_as, text = decoded_body(message.body, limit=len(message.body) * 4 if full else 4000)
    size = f"{message.body_size} bytes"
    if message.body_truncated:
        size += f", {len(message.body)} kept"
    table.add_row("body", Text(f"({decoded_as}, {size})\n{text}"))
    console.print(table)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


@quarantine_app.command("discard")
def discard(
    message_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept for audit).")],
    by: Annotated[
        str | None, typer.Option("--by", help="Who decided (default: your user name).")
    ] = None,
) -> None:
    """Give up on a quarantined message for good; the reason is kept for audit."""
    operator = operator_for(reason, by)
    with _store() as store:
        message = _attempt(lambda: store.discard(message_id, reason, operator))
    console.print(
        Text(f"discarded #{message.id} ({message.problem}) by {operator}: {message.discard_reason}")
    )


@quarantine_app.command("replay")
def replay(
    message_id: IdArgument,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Publish under this new key (the old one is answered)."),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who decided (default: your user name).")
    ] = None,
    wait: Annotated[float, wait_option("Wait up to SECONDS for the outcome.")] = 0.0,
) -> None:
    """Publish the command a quarantined message carried, in a repaired message.

    Only the envelope is repaired (headers, content type, time limits, schedule,
    argument shape); the command must be valid. Its key was usually answered when the
    message was quarantined, so give a new one with --key.
    """
    settings = resolved_settings(quiet=True)
    operator = operator_for(None, by)
    # The publisher records the command as queued on its own connection while the
    # quarantine row stays locked on the store's.
    with _store() as store, Publisher(settings) as publisher:
        replayed = _attempt(lambda: store.replay(message_id, publisher, operator, key))
        new_key = replayed.command.key
        console.print(
            Text(
                f"replayed #{message_id} as {new_key} ({replayed.command.type}) to "
                f"{replayed.receipt.queue} — check with: orderq status {new_key}"
            )
        )
        if wait:
            outcome = _attempt(lambda: wait_for(store.engine, new_key, wait))
            console.print(Text(f"{new_key}: {outcome.status}"))
            if not outcome.is_terminal:
                raise typer.Exit(1)
