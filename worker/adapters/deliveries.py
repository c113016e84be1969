"""The worker's bookkeeping outside any command transaction.

Every call here is one statement that commits on its own: an attempt counted here
stays counted even if the command's own transaction never commits because its process
was killed. The statements themselves live in `producers.command_log`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from producers.command_log import Attempt, Claim, CommandLog
from producers.database import autocommit


class DeliveryLog:
    """Counts attempts and records dead letters, each in its own autocommitted statement."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_attempt(
        self, key: str, command_type: str, fingerprint: str, payload: dict[str, Any]
    ) -> Attempt:
        """Count one more attempt for `key`, unless it is decided or a dead letter.

        A duplicate delivery of a key that already has an outcome gets that outcome
        back (in `Attempt.decided`) and uses up no attempt.
        """
        with autocommit(self.engine) as connection:
            return CommandLog(connection).count_attempt(key, command_type, fingerprint, payload)

    def record_attempts(self, claims: Sequence[Claim]) -> dict[str, Attempt]:
        """`record_attempt` for a batch of distinct keys: one statement, one round trip,
        committed asynchronously (`synchronous_commit = off` for this transaction only).

        An asynchronous commit is visible to every other session at once, so a worker
        killed after it still finds the attempt counted. Only a crash of PostgreSQL
        itself can lose it (the last few hundred milliseconds of such commits), and then
        every command transaction that had not committed is lost with it: a business
        commit flushes the WAL up to its own commit record, which lies after this one.
        docs/reliability.md has the whole argument.
        """
        with autocommit(self.engine) as connection, connection.pipeline() as pipeline:
            connection.execute("BEGIN")
            connection.execute("SET LOCAL synchronous_commit TO off")
            log = CommandLog(connection)
            cursor = connection.execute(*log.count_attempts_statement(claims))
            connection.execute("COMMIT")
            pipeline.sync()
            return log.read_attempts(cursor.fetchall())

    def record_error(self, key: str, error: str) -> None:
        """Remember the latest failure of a key that will be retried."""
        with autocommit(self.engine) as connection:
            CommandLog(connection).record_error(key, error)

    def record_key_reuse(self, key: str, command_type: str, fingerprint: str) -> None:
        """Remember a delivery refused for reusing `key` with another payload."""
        with autocommit(self.engine) as connection:
            CommandLog(connection).record_key_reuse(key, command_type, fingerprint)

    def mark_failed(self, key: str, error: str, payload: dict[str, Any], fingerprint: str) -> None:
        """Dead-letter `key` with the exact payload that failed and why."""
        with autocommit(self.engine) as connection:
            CommandLog(connection).mark_failed(key, error, payload, fingerprint)
