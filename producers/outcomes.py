"""Ask what happened to an idempotency key.

Statuses: `unknown` (never heard of), `queued` (published, no worker has it yet),
`running` (a worker took it; retries included), `succeeded` (with `result`),
`rejected` (with `reason` and `message`), `failed` (dead-lettered after its attempts
ran out, or discarded by an operator).

A key keeps its first outcome. When a later delivery reused the key with a different
payload, it was refused (`idempotency_key_reused`) without touching anything; the
lookup says so in `key_reuse` (when, how often, the refused payload's fingerprint),
a field present only then.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine

from producers.command_log import CommandLog, DeliveryState, KeyRecord, KeyReuse, LedgerStatus
from producers.database import autocommit

Status = Literal["unknown", "queued", "running", "succeeded", "rejected", "failed"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "rejected", "failed"})


REUSE_REASON = "idempotency_key_reused"


@dataclass(frozen=True)
class RefusedReuse:
    """Later deliveries that reused the key with a different payload, all refused."""

    refusals: int
    first_refused_at: datetime
    last_refused_at: datetime
    #: the last refused delivery's command type and payload fingerprint (SHA-256)
    command_type: str
    fingerprint: str
    reason: str = REUSE_REASON

    @classmethod
    def of(cls, reuse: KeyReuse) -> RefusedReuse:
        return cls(
            refusals=reuse.refusals,
            first_refused_at=reuse.first_refused_at,
            last_refused_at=reuse.last_refused_at,
            command_type=reuse.command_type,
            fingerprint=reuse.fingerprint,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "refusals": self.refusals,
            "first_refused_at": self.first_refused_at.isoformat(),
            "last_refused_at": self.last_refused_at.isoformat(),
            "command_type": self.command_type,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class CommandStatus:
    """Where one key stands."""

    key: str
    status: Status
    result: dict[str, Any] | None = None
    reason: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    #: set when a later delivery reused the key with another payload (and was refused)
    key_reuse: RefusedReuse | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; `key_reuse` appears only when there was a refused reuse."""
        data = asdict(self)
        data.pop("key_reuse")
        if self.status != "succeeded":
            data.pop("result")
        if self.status not in ("rejected", "failed"):
            for name in ("reason", "message", "details"):
                data.pop(name)
        if self.key_reuse is not None:
            data["key_reuse"] = self.key_reuse.as_dict()
        return data


def lookup(engine: Engine, key: str) -> CommandStatus:
    """The current status of `key` (one indexed read)."""
    with autocommit(engine) as connection:
        record = CommandLog(connection).lookup(key)
    return status_of(key, record)


def status_of(key: str, record: KeyRecord) -> CommandStatus:
    """Where `key` stands, from what the command log holds for it."""
    reuse = RefusedReuse.of(record.reuse) if record.reuse is not None else None
    decided = record.decided
    if decided is not None:
        if decided.status == LedgerStatus.SUCCEEDED:
            return CommandStatus(
                key,
                "succeeded",
                result=decided.result,
                attempts=record.attempts or 0,
                key_reuse=reuse,
            )
        stored = decided.result or {}
        return CommandStatus(
            key,
            "rejected",
            reason=decided.reason,
            message=stored.get("message"),
            details=stored.get("details") or {},
            attempts=record.attempts or 0,
            key_reuse=reuse,
        )
    if record.state is None:
        return CommandStatus(key, "unknown", key_reuse=reuse)
    attempts = record.attempts or 0
    if record.state == DeliveryState.FAILED:
        return CommandStatus(
            key, "failed", reason="failed", message=record.error, attempts=attempts, key_reuse=reuse
        )
    if record.state == DeliveryState.DISCARDED:
        return CommandStatus(
            key,
            "failed",
            reason="discarded",
            message=record.error,
            attempts=attempts,
            key_reuse=reuse,
        )
    return CommandStatus(
        key, "queued" if attempts == 0 else "running", attempts=attempts, key_reuse=reuse
    )


def wait_for(engine: Engine, key: str, timeout: float, poll: float = 0.2) -> CommandStatus:
    """Poll until `key` reaches a terminal status or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        status = lookup(engine, key)
        if status.is_terminal or time.monotonic() >= deadline:
            return status
        time.sleep(min(poll, max(deadline - time.monotonic(), 0)))
