"""Commands accepted long ago that never reached an outcome, and commands accepted
(over HTTP) that were never handed to the broker."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from producers.command_log import CommandLog, StuckCommand, UnpublishedCommand
from producers.database import transaction

__all__ = ["StuckCommand", "UnpublishedCommand", "publish_unpublished_batch", "republish_batch"]


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
    sent: list[str] = []
    error: Exception | None = None
    with transaction(engine) as connection:
        log = CommandLog(connection)
        for command in log.claim_stuck(older_than_seconds, max_times, limit, command_types):
            try:
                send(command)
            except Exception as failure:  # the broker is down: stop, keep what was sent
                error = failure
                break
            sent.append(command.key)
        if sent:
            log.mark_republished(sent)
    return len(sent), error


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
    sent: list[str] = []
    done: list[str] = []
    error: Exception | None = None
    with transaction(engine) as connection:
        log = CommandLog(connection)
        for command in log.claim_unpublished(older_than_seconds, limit):
            if not command.needs_sending:
                done.append(command.key)
                continue
            try:
                send(command)
            except Exception as failure:  # the broker is down: stop, keep what was sent
                error = failure
                break
            sent.append(command.key)
        if sent or done:
            log.mark_published(sent + done)
    return len(sent), error
