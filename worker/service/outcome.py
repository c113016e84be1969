"""What happened to a command: the value stored in the ledger and returned to callers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

OutcomeStatus = Literal["succeeded", "rejected", "failed"]


@dataclass(frozen=True)
class Outcome:
    """The single outcome of one idempotency key.

    `replayed` is not part of the outcome itself: it says whether this delivery
    computed it or read it back from the ledger.
    """

    key: str | None
    status: OutcomeStatus
    result: dict[str, Any] | None = None
    reason: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    @classmethod
    def succeeded(cls, key: str, result: dict[str, Any]) -> Outcome:
        return cls(key=key, status="succeeded", result=result)

    @classmethod
    def rejected(
        cls, key: str | None, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> Outcome:
        return cls(
            key=key, status="rejected", reason=reason, message=message, details=details or {}
        )

    @classmethod
    def failed(cls, key: str, message: str) -> Outcome:
        return cls(key=key, status="failed", reason="failed", message=message)

    def as_replay(self) -> Outcome:
        return replace(self, replayed=True)

    def ledger_result(self) -> dict[str, Any] | None:
        """The JSON stored in `command_ledger.result`."""
        if self.status == "succeeded":
            return self.result
        return {"message": self.message, "details": self.details}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, returned by tasks and printed by the CLI."""
        data: dict[str, Any] = {"key": self.key, "status": self.status}
        if self.status == "succeeded":
            data["result"] = self.result
        else:
            data.update(reason=self.reason, message=self.message, details=self.details)
        data["replayed"] = self.replayed
        return data
