"""Commands accepted long ago that never reached an outcome, and commands accepted
(over HTTP) that were never handed to the broker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import Engine

from producers.command_log import CommandLog, StuckCommand, UnpublishedCommand
from producers.database import transaction

__all__ = ["StuckCommand", "UnpublishedCommand", "publish_unpublished_batch", "republish_batch"]

C = TypeVar("C", StuckCommand, UnpublishedCommand)


def republish_batch(
    engine: Engine,
    older_than_seconds: float,
    max_times: int,
    limit: int,
    command_types: list[str],
    send: Callable[[StuckCommand], None],
) -> tuple[int, Exception | None]:
    """Claim up to `limit` stuck commands, `send` each, record the re-sends; commit.

    Returns how many were sent and the error that stopped sending, if any. A row whose
    send failed is left untouched, so the next run tries it again.
    """
    with transaction(engine) as connection:
        log = CommandLog(connection)
        claimed = log.claim_stuck(older_than_seconds, max_times, limit, command_types)
        sent, error = _send_each(claimed, send)
        if sent:
            log.mark_republished(sent)
    return len(sent), error


def _send_each(
    commands: Sequence[C], send: Callable[[C], None]
) -> tuple[list[str], Exception | None]:
    """Send in order until one fails: (keys sent, the error that stopped sending)."""
    sent: list[str] = []
    for command in commands:
        try:
            send(command)
        except Exception as failure:  # the broker is down: stop, keep what was sent
            return sent, failure
        sent.append(command.key)
    return sent, None


def publish_unpublished_batch(
    engine: Engine,
    older_than_seconds: float,
    limit: int,
    send: Callable[[UnpublishedCommand], None],
) -> tuple[int, Exception | None]:
    """Claim up to `limit` accepted-but-unpublished commands, `send` each, mark them
    published; commit. Returns how many were sent and the error that stopped sending.

    A claimed row a worker already took is marked without being sent again. A row whose
    send failed stays unpublished for the next run.
    """
    with transaction(engine) as connection:
        log = CommandLog(connection)
        claimed = log.claim_unpublished(older_than_seconds, limit)
        taken = [command.key for command in claimed if not command.needs_sending]
        sent, error = _send_each([c for c in claimed if c.needs_sending], send)
        if sent or taken:
            log.mark_published(sent + taken)
    return len(sent), error
