"""The delivery record of each key, written outside any command transaction.

Every statement here commits on its own: an attempt counted here stays counted even
if the command's own transaction never commits because its process was killed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Engine, func, update

from worker.adapters import tables
from worker.adapters.repositories import LedgerEntry

deliveries = tables.command_deliveries

#: States in which a key is not run again until an operator replays it.
DEAD_STATES = ("failed", "discarded")

# Hand-written SQL straight through psycopg, like the other hot-path statements: it
# runs once per delivery.
_RECORD_ATTEMPT = """
    WITH decided AS (
        SELECT command_type, fingerprint, status, result, reason
        FROM command_ledger
        WHERE idempotency_key = %(key)s AND status <> 'processing'
    ), counted AS (
        INSERT INTO command_deliveries AS d
            (idempotency_key, command_type, fingerprint, payload, state, attempts, deliveries)
        VALUES (%(key)s, %(type)s, %(fingerprint)s, %(payload)s, 'running', 1, 1)
        ON CONFLICT (idempotency_key) DO UPDATE SET
            deliveries = d.deliveries + 1,
            attempts = CASE
                WHEN d.state IN ('failed', 'discarded') OR EXISTS (SELECT FROM decided)
                THEN d.attempts ELSE d.attempts + 1 END,
            state = CASE WHEN d.state = 'queued' THEN 'running' ELSE d.state END,
            updated_at = now()
        RETURNING d.attempts, d.state, coalesce(d.discard_reason, d.last_error) AS error
    )
    SELECT counted.attempts, counted.state, counted.error,
           decided.command_type AS ledger_type, decided.fingerprint AS ledger_fingerprint,
           decided.status, decided.result, decided.reason
    FROM counted LEFT JOIN decided ON true
"""


@dataclass(frozen=True)
class Attempt:
    """This delivery's attempt number for its key, and the key's delivery state.

    `decided` is the key's committed outcome if it has one (nothing was counted). For
    a dead letter (`failed`/`discarded`) nothing is counted either and `error` is the
    stored reason it is dead.
    """

    number: int
    state: str
    error: str | None = None
    decided: LedgerEntry | None = None

    @property
    def is_dead(self) -> bool:
        return self.state in DEAD_STATES


class DeliveryLog:
    """Counts attempts and records dead letters, each in its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_attempt(
        self, key: str, command_type: str, fingerprint: str, payload: dict[str, Any]
    ) -> Attempt:
        """Count one more attempt for `key`, unless it is decided or dead letter.

        One statement reads the ledger and counts: a duplicate delivery of a key that
        already has an outcome gets that outcome back and uses up no attempt.
        """
        # One statement, autocommit: no BEGIN/COMMIT round trips around it.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            row = connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                _RECORD_ATTEMPT,
                {
                    "key": key,
                    "type": command_type,
                    "fingerprint": fingerprint,
                    "payload": Jsonb(payload),
                },
            ).fetchone()
        attempts, state, error, ledger_type, ledger_fingerprint, status, result, reason = row
        decided = (
            LedgerEntry(key, ledger_type, ledger_fingerprint, status, result, reason)
            if status is not None
            else None
        )
        return Attempt(attempts, state, error, decided)

    def record_error(self, key: str, error: str) -> None:
        """Remember the latest failure of a key that will be retried."""
        self._update(key, last_error=error)

    def mark_failed(self, key: str, error: str, payload: dict[str, Any], fingerprint: str) -> None:
        """Dead-letter `key` with the exact payload that failed and why."""
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries)
                .where(
                    deliveries.c.idempotency_key == key,
                    deliveries.c.state.not_in(DEAD_STATES),
                )
                .values(
                    state="failed",
                    last_error=error,
                    payload=payload,
                    fingerprint=fingerprint,
                    failed_at=func.now(),
                    updated_at=func.now(),
                )
            )

    def _update(self, key: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.idempotency_key == key)
                .values(updated_at=func.now(), **values)
            )
