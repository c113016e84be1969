"""The one exception root for business rule violations.

A `Rejected` error becomes a stored `rejected` outcome: it is replayed to every later
delivery of the same key and never retried.
"""

from __future__ import annotations

from typing import Any


class Rejected(Exception):
    """A command broke a business rule; `reason` is a stable machine-readable code."""

    reason: str = "rejected"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidCommandRejected(Rejected):
    """The message is not a valid command (malformed, wrong types, unknown type)."""

    reason = "invalid_command"


class IdempotencyKeyReused(Rejected):
    """The key was already used for a command with a different payload."""

    reason = "idempotency_key_reused"


class InsufficientStock(Rejected):
    """One or more lines ask for more than is available; `shortfalls` names each."""

    reason = "insufficient_stock"


class UnknownSku(Rejected):
    """A command names a SKU the catalogue does not have."""

    reason = "unknown_sku"


class OrderNotFound(Rejected):
    """A command names an order number that does not exist."""

    reason = "order_not_found"


class InvalidOrderTransition(Rejected):
    """The order's current status does not allow the requested change."""

    reason = "invalid_order_transition"
