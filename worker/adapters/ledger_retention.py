"""Deleting ledger rows past the retention window, one short transaction per batch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from producers.command_log import CommandLog
from producers.database import transaction


@dataclass(frozen=True)
class PurgedBatch:
    ledger_rows: int
    delivery_rows: int


def purge_ledger_batch(engine: Engine, retention_seconds: float, limit: int) -> PurgedBatch:
    """Delete up to `limit` ledger rows older than the retention window; commit."""
    with transaction(engine) as connection:
        ledger_rows, delivery_rows = CommandLog(connection).purge_ledger_batch(
            retention_seconds, limit
        )
    return PurgedBatch(ledger_rows, delivery_rows)
