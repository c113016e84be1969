"""The delivery record of each key, written outside any command transaction.

Every statement here commits on its own: an attempt counted here stays counted even
if the command's own transaction never commits because its process was killed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from worker.adapters import tables

deliveries = tables.command_deliveries


@dataclass(frozen=True)
class Attempt:
    """This delivery's attempt number for its key, and the key's delivery state."""

    number: int
    state: str


class DeliveryLog:
    """Counts attempts and records dead letters, each in its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_attempt(
        self, key: str, command_type: str, fingerprint: str, payload: dict[str, Any]
    ) -> Attempt:
        statement = pg_insert(deliveries).values(
            idempotency_key=key,
            command_type=command_type,
            fingerprint=fingerprint,
            payload=payload,
            state="running",
            attempts=1,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["idempotency_key"],
            set_={
                "attempts": deliveries.c.attempts + 1,
                "state": func.replace(deliveries.c.state, "queued", "running"),
                "updated_at": func.now(),
            },
        ).returning(deliveries.c.attempts, deliveries.c.state)
        with self.engine.begin() as connection:
            number, state = connection.execute(statement).one()
        return Attempt(number, state)

    def record_error(self, key: str, error: str) -> None:
        self._update(key, last_error=error)

    def mark_failed(self, key: str, error: str) -> None:
        self._update(key, state="failed", last_error=error)

    def _update(self, key: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.idempotency_key == key)
                .values(updated_at=func.now(), **values)
            )
