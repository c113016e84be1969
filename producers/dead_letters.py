"""Dead letters: commands that ended `failed`, for an operator to inspect, replay or discard.

They live in `command_deliveries` (state `failed` or `discarded`) with the payload
that failed, its last error and attempt count. Replaying resets the key's attempts
and publishes the stored payload again under the same key — the ledger still runs
it at most once. Discarding keeps the row, the reason and who discarded it, for audit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, text

from producers.commands import COMMANDS_BY_TYPE
from producers.publisher import Publisher, Receipt

StateFilter = Literal["failed", "discarded", "all"]

_COLUMNS = """
    d.idempotency_key, d.command_type, d.state, d.attempts, d.last_error, d.payload,
    d.failed_at, d.discarded_at, d.discard_reason, d.discarded_by, d.replays,
    d.created_at, d.updated_at, l.status AS outcome
"""
_FROM = """
    FROM command_deliveries d
    LEFT JOIN command_ledger l
        ON l.idempotency_key = d.idempotency_key AND l.status <> 'processing'
"""
_LIST = text(
    f"""
    SELECT {_COLUMNS} {_FROM}
    WHERE d.state = ANY(:states)
      AND l.status IS NULL  -- a concurrent copy that succeeded after all is not dead
      AND (CAST(:command_type AS text) IS NULL OR d.command_type = :command_type)
    ORDER BY d.state, d.failed_at DESC, d.idempotency_key
    LIMIT :limit
    """
)
_ONE = text(f"SELECT {_COLUMNS} {_FROM} WHERE d.idempotency_key = :key")
_ONE_LOCKED = text(f"SELECT {_COLUMNS} {_FROM} WHERE d.idempotency_key = :key FOR UPDATE OF d")
_RESET = text(
    """
    UPDATE command_deliveries
    SET state = 'queued', attempts = 0, failed_at = NULL, replays = replays + 1,
        updated_at = now()
    WHERE idempotency_key = :key
    """
)
_DISCARD = text(
    """
    UPDATE command_deliveries
    SET state = 'discarded', discard_reason = :reason, discarded_by = :by,
        discarded_at = now(), updated_at = now()
    WHERE idempotency_key = :key
    """
)


class DeadLetterError(Exception):
    """The operation does not apply to this key; the message says why, in one line."""


@dataclass(frozen=True)
class DeadLetter:
    """One key's delivery record, as an operator sees it."""

    key: str
    command_type: str
    state: str
    attempts: int
    last_error: str | None
    payload: dict[str, Any]
    failed_at: datetime | None
    discarded_at: datetime | None
    discard_reason: str | None
    discarded_by: str | None
    replays: int
    created_at: datetime
    updated_at: datetime
    #: `succeeded`/`rejected` if the ledger has an outcome for the key after all.
    outcome: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name, value in data.items():
            if isinstance(value, datetime):
                data[name] = value.isoformat()
        return data


class DeadLetters:
    """List, show, replay and discard dead letters."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(
        self, state: StateFilter = "failed", command_type: str | None = None, limit: int = 50
    ) -> list[DeadLetter]:
        """Dead letters in `state`, newest failure first."""
        states = ["failed", "discarded"] if state == "all" else [state]
        with self.engine.connect() as connection:
            rows = connection.execute(
                _LIST, {"states": states, "command_type": command_type, "limit": limit}
            ).all()
        return [DeadLetter(*row) for row in rows]

    def get(self, key: str) -> DeadLetter:
        """The delivery record of `key`, whatever its state."""
        with self.engine.connect() as connection:
            row = connection.execute(_ONE, {"key": key}).one_or_none()
        if row is None:
            raise DeadLetterError(f"{key}: no such key (never published or recorded)")
        return DeadLetter(*row)

    def replay(self, key: str, publisher: Publisher) -> Receipt:
        """Publish a failed command again under its key, with fresh attempts.

        The row stays locked until the broker accepted the message: a worker that
        picks it up at once waits for the reset to commit, and if publishing fails
        nothing changes and the command is still `failed`.
        """
        with self.engine.begin() as connection:
            row = connection.execute(_ONE_LOCKED, {"key": key}).one_or_none()
            if row is None:
                raise DeadLetterError(f"{key}: no such key (never published or recorded)")
            letter = DeadLetter(*row)
            _require_failed(letter, "replayed")
            command_class = COMMANDS_BY_TYPE.get(letter.command_type)
            if command_class is None:
                raise DeadLetterError(
                    f"{key}: command type {letter.command_type!r} is unknown to this version"
                )
            connection.execute(_RESET, {"key": key})
            return publisher.send(command_class.task_name, key, letter.payload)

    def discard(self, key: str, reason: str, by: str) -> DeadLetter:
        """Give up on a failed command for good; the reason and operator are kept."""
        reason = reason.strip()
        if not reason:
            raise DeadLetterError("a discard needs a reason (--reason), kept for audit")
        with self.engine.begin() as connection:
            row = connection.execute(_ONE_LOCKED, {"key": key}).one_or_none()
            if row is None:
                raise DeadLetterError(f"{key}: no such key (never published or recorded)")
            _require_failed(DeadLetter(*row), "discarded")
            connection.execute(_DISCARD, {"key": key, "reason": reason, "by": by})
        return self.get(key)


def _require_failed(letter: DeadLetter, action: str) -> None:
    if letter.outcome is not None:
        raise DeadLetterError(
            f"{letter.key} already has an outcome ({letter.outcome}); nothing to be {action}"
        )
    if letter.state == "discarded":
        raise DeadLetterError(
            f"{letter.key} was discarded ({letter.discard_reason}); it cannot be {action}"
        )
    if letter.state != "failed":
        raise DeadLetterError(
            f"{letter.key} is {letter.state}, not failed: only failed commands can be {action}"
        )
