"""Commands accepted long ago that never reached an outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

# Served by ix_command_deliveries_pending_updated_at. SKIP LOCKED lets two runs (or a
# worker counting an attempt) proceed without waiting on each other's rows.
_CLAIM_STUCK = text(
    """
    SELECT d.idempotency_key, d.command_type, d.payload
    FROM command_deliveries d
    WHERE d.state IN ('queued', 'running')
      AND d.updated_at < now() - make_interval(secs => :older_than)
      AND d.republished < :max_times
      AND d.command_type = ANY(:types)
      AND NOT EXISTS (
          SELECT 1 FROM command_ledger l
          WHERE l.idempotency_key = d.idempotency_key AND l.status IN ('succeeded', 'rejected')
      )
    ORDER BY d.updated_at
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)
_MARK_REPUBLISHED = text(
    """
    UPDATE command_deliveries SET republished = republished + 1, updated_at = now()
    WHERE idempotency_key = ANY(:keys)
    """
)


@dataclass(frozen=True)
class StuckCommand:
    key: str
    command_type: str
    payload: dict[str, Any]


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
    with engine.begin() as connection:
        rows = connection.execute(
            _CLAIM_STUCK,
            {
                "older_than": older_than_seconds,
                "max_times": max_times,
                "limit": limit,
                "types": command_types,
            },
        ).all()
        for key, command_type, payload in rows:
            try:
                send(StuckCommand(key, command_type, payload))
            except Exception as failure:  # the broker is down: stop, keep what was sent
                error = failure
                break
            sent.append(key)
        if sent:
            connection.execute(_MARK_REPUBLISHED, {"keys": sent})
    return len(sent), error
