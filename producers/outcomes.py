"""Ask what happened to an idempotency key.

Statuses: `unknown` (never heard of), `queued` (published, no worker has it yet),
`running` (a worker took it; retries included), `succeeded` (with `result`),
`rejected` (with `reason` and `message`), `failed` (dead-lettered after its attempts
ran out, or discarded by an operator).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine

from producers.command_log import CommandLog, DeliveryState, KeyRecord, LedgerStatus
from producers.database import autocommit

Status = Literal["unknown", "queued", "running", "succeeded", "rejected", "failed"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "rejected", "failed"})


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

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.status != "succeeded":
            data.pop("result")
        if self.status not in ("rejected", "failed"):
            for name in ("reason", "message", "details"):
                data.pop(name)
        return data


def lookup(engine: Engine, key: str) -> CommandStatus:
    """The current status of `key` (one indexed read)."""
    with autocommit(engine) as connection:
        record = CommandLog(connection).lookup(key)
    return status_of(key, record)


def status_of(key: str, record: KeyRecord) -> CommandStatus:
    """Where `key` stands, from what the command log holds for it."""
    decided = record.decided
    if decided is not None:
        if decided.status == LedgerStatus.SUCCEEDED:
            return CommandStatus(
                key, "succeeded", result=decided.result, attempts=record.attempts or 0
            )
        stored = decided.result or {}
        return CommandStatus(
            key,
            "rejected",
            reason=decided.reason,
            message=stored.get("message"),
            details=stored.get("details") or {},
            attempts=record.attempts or 0,
        )
    if record.state is None:
        return CommandStatus(key, "unknown")
    attempts = record.attempts or 0
    if record.state == DeliveryState.FAILED:
        return CommandStatus(
            key, "failed", reason="failed", message=record.error, attempts=attempts
        )
    if record.state == DeliveryState.DISCARDED:
        return CommandStatus(
            key, "failed", reason="discarded", message=record.error, attempts=attempts
        )
    return CommandStatus(key, "queued" if attempts == 0 else "running", attempts=attempts)


def wait_for(engine: Engine, key: str, timeout: float, poll: float = 0.2) -> CommandStatus:
    """Poll until `key` reaches a terminal status or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        status = lookup(engine, key)
        if status.is_terminal or time.monotonic() >= deadline:
            return status
        time.sleep(min(poll, max(deadline - time.monotonic(), 0)))
