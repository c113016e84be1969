"""Re-publish commands that are stuck without an outcome: the safety net under the broker.

A tracked publish records the key as `queued` before sending, and every delivery
counts an attempt; so the database knows each key the system accepted. A key still
`queued` or `running`, without an outcome, long after any delivery could still be in
flight has lost its message somewhere a broker cannot see — with Redis, a worker whose
main process was killed between `BRPOP` taking the message and recording it as
unacknowledged. Re-publishing the stored payload under the same key is always safe:
the ledger runs a key at most once.

Maintenance runs this periodically; `orderq republish-stuck` runs it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from producers.commands import COMMANDS_BY_TYPE
from producers.publisher import Publisher
from producers.settings import Settings

_STUCK = text(
    """
    SELECT d.idempotency_key, d.command_type, d.state, d.attempts, d.payload, d.updated_at
    FROM command_deliveries d
    WHERE d.state IN ('queued', 'running')
      AND d.updated_at < now() - make_interval(secs => :older_than)
      AND d.updated_at >= now() - make_interval(secs => :horizon)
      AND NOT EXISTS (
          SELECT FROM command_ledger l
          WHERE l.idempotency_key = d.idempotency_key AND l.status <> 'processing'
      )
    ORDER BY d.updated_at
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)
_TOUCH = text("UPDATE command_deliveries SET updated_at = now() WHERE idempotency_key = ANY(:keys)")


@dataclass(frozen=True)
class StuckCommand:
    """A key with a delivery record and no outcome, untouched for a while."""

    key: str
    command_type: str
    state: str
    attempts: int
    updated_at: datetime


def default_age(settings: Settings) -> float:
    """Older than this, no delivery of the key can still be in flight: Redis would have
    handed an unacknowledged message out again, and the longest retry countdown and
    task time limit have passed."""
    return (
        settings.redis_visibility_timeout_seconds
        + settings.task_time_limit_seconds
        + settings.retry_backoff_max_seconds
    )


def republish_stuck(
    engine: Engine,
    publisher: Publisher | None,
    older_than: float,
    horizon: float = 86_400,
    limit: int = 1000,
) -> list[StuckCommand]:
    """Re-publish up to `limit` stuck commands (just list them if `publisher` is None).

    Only keys untouched for `older_than` seconds, and touched within `horizon`, are
    considered; re-published ones are touched, so the next run leaves them alone for
    another `older_than`. Rows are locked (SKIP LOCKED) until the broker took every
    message, so two sweepers never send the same key twice at once.
    """
    with engine.begin() as connection:
        rows = connection.execute(
            _STUCK, {"older_than": older_than, "horizon": horizon, "limit": limit}
        ).all()
        stuck = [
            StuckCommand(key, kind, state, attempts, at)
            for key, kind, state, attempts, _, at in rows
        ]
        if publisher is None:
            return stuck
        sent = []
        for key, command_type, _, _, payload, _ in rows:
            command_class = COMMANDS_BY_TYPE.get(command_type)
            if command_class is None:
                continue  # not a command this version knows how to send
            publisher.send(command_class.task_name, key, payload)
            sent.append(key)
        if sent:
            connection.execute(_TOUCH, {"keys": sent})
    return [command for command in stuck if command.key in set(sent)]
