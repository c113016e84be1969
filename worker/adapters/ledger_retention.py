"""Deleting ledger rows past the retention window, one short transaction per batch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

# SKIP LOCKED: a row some transaction holds (a concurrent redelivery of an old key) is
# left for a later batch instead of making the purge wait. The delivery record of a
# purged key goes with it, so the key does not look "stuck" afterwards; dead letters
# (failed, discarded) stay for the operator. Served by ix_command_ledger_created_at.
_PURGE_BATCH = text(
    """
    WITH doomed AS (
        SELECT id FROM command_ledger
        WHERE created_at < now() - make_interval(secs => :retention)
        ORDER BY created_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM command_ledger l USING doomed d WHERE l.id = d.id
        RETURNING l.idempotency_key
    ), cleared AS (
        DELETE FROM command_deliveries c USING gone g
        WHERE c.idempotency_key = g.idempotency_key AND c.state IN ('queued', 'running')
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM cleared)
    """
)


@dataclass(frozen=True)
class PurgedBatch:
    ledger_rows: int
    delivery_rows: int


def purge_ledger_batch(engine: Engine, retention_seconds: float, limit: int) -> PurgedBatch:
    """Delete up to `limit` ledger rows older than the retention window; commit."""
    with engine.begin() as connection:
        ledger_rows, delivery_rows = connection.execute(
            _PURGE_BATCH, {"retention": retention_seconds, "limit": limit}
        ).one()
    return PurgedBatch(ledger_rows, delivery_rows)
