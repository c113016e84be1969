"""Dead letters: commands that ended `failed`, for an operator to inspect, replay or discard.

They live in `command_deliveries` (state `failed` or `discarded`) with the payload
that failed, its last error and attempt count. Replaying resets the key's attempts
and publishes the stored payload again under the same key — the ledger still runs
it at most once. Discarding keeps the row, the reason and who discarded it, for audit.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Engine

from producers.command_log import CommandLog, DeliveryRecord, DeliveryState
from producers.commands import COMMANDS_BY_TYPE
from producers.database import autocommit, transaction
from producers.publisher import Publisher, Receipt

StateFilter = Literal["failed", "discarded", "all"]
#: a key's delivery record, as an operator sees it
DeadLetter = DeliveryRecord


class DeadLetterError(Exception):
    """The operation does not apply to this key; the message says why, in one line."""


class DeadLetters:
    """List, show, replay and discard dead letters."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(
        self, state: StateFilter = "failed", command_type: str | None = None, limit: int = 50
    ) -> list[DeadLetter]:
        """Dead letters in `state`, newest failure first."""
        states = (
            [DeliveryState.FAILED, DeliveryState.DISCARDED]
            if state == "all"
            else [DeliveryState(state)]
        )
        with autocommit(self.engine) as connection:
            return CommandLog(connection).dead_letters(states, command_type, limit)

    def get(self, key: str) -> DeadLetter:
        """The delivery record of `key`, whatever its state."""
        with autocommit(self.engine) as connection:
            letter = CommandLog(connection).delivery(key)
        if letter is None:
            raise DeadLetterError(f"{key}: no such key (never published or recorded)")
        return letter

    def replay(self, key: str, publisher: Publisher) -> Receipt:
        """Publish a failed command again under its key, with fresh attempts.

        The row stays locked until the broker accepted the message: a worker that
        picks it up at once waits for the reset to commit, and if publishing fails
        nothing changes and the command is still `failed`.
        """
        with transaction(self.engine) as connection:
            log = CommandLog(connection)
            letter = log.delivery(key, lock=True)
            if letter is None:
                raise DeadLetterError(f"{key}: no such key (never published or recorded)")
            _require_failed(letter, "replayed")
            command_class = COMMANDS_BY_TYPE.get(letter.command_type)
            if command_class is None:
                raise DeadLetterError(
                    f"{key}: command type {letter.command_type!r} is unknown to this version"
                )
            log.reset_for_replay(key)
            return publisher.send(command_class.task_name, key, letter.payload)

    def discard(self, key: str, reason: str, by: str) -> DeadLetter:
        """Give up on a failed command for good; the reason and operator are kept."""
        reason = reason.strip()
        if not reason:
            raise DeadLetterError("a discard needs a reason (--reason), kept for audit")
        with transaction(self.engine) as connection:
            log = CommandLog(connection)
            letter = log.delivery(key, lock=True)
            if letter is None:
                raise DeadLetterError(f"{key}: no such key (never published or recorded)")
            _require_failed(letter, "discarded")
            log.discard(key, reason, by)
        return self.get(key)


def _require_failed(letter: DeadLetter, action: str) -> None:
    if letter.outcome is not None:
        raise DeadLetterError(
            f"{letter.key} already has an outcome ({letter.outcome}); nothing to be {action}"
        )
    if letter.state == DeliveryState.DISCARDED:
        raise DeadLetterError(
            f"{letter.key} was discarded ({letter.discard_reason}); it cannot be {action}"
        )
    if letter.state != DeliveryState.FAILED:
        raise DeadLetterError(
            f"{letter.key} is {letter.state}, not failed: only failed commands can be {action}"
        )
