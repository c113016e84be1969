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


class MessageExpired(Rejected):
    """The message's `expires` time passed before a worker received it; it was not run."""

    reason = "expired"


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


# -- library loans ------------------------------------------------------------------------


class MemberNotFound(Rejected):
    """No live member has this member number."""

    reason = "member_not_found"


class MemberNotActive(Rejected):
    """The member is suspended: no new loans, renewals or reservations."""

    reason = "member_not_active"


class LoanLimitReached(Rejected):
    """The member already has as many active loans as their limit allows."""

    reason = "loan_limit_reached"


class WorkNotFound(Rejected):
    """The catalogue has no work with this code."""

    reason = "work_not_found"


class CopyNotFound(Rejected):
    """No copy has this barcode."""

    reason = "copy_not_found"


class CopyDeleted(Rejected):
    """The copy was withdrawn from the collection (soft-deleted)."""

    reason = "copy_deleted"


class CopyNotAvailable(Rejected):
    """The copy is on loan."""

    reason = "copy_not_available"


class CopyHeldForAnotherMember(Rejected):
    """The copy is on the hold shelf for a different member's reservation."""

    reason = "copy_held_for_another_member"


class BarcodeInUse(Rejected):
    """A copy with this barcode already exists."""

    reason = "barcode_in_use"


class LoanNotFound(Rejected):
    """The copy has no active loan (for this member)."""

    reason = "loan_not_found"


class RenewalLimitReached(Rejected):
    """The loan was already renewed as often as allowed."""

    reason = "renewal_limit_reached"


class WorkHasWaitingReservations(Rejected):
    """Other members are queued for the work, so the loan cannot be renewed."""

    reason = "work_has_waiting_reservations"


class ReservationExists(Rejected):
    """The member already has an open (queued or ready) reservation for the work."""

    reason = "reservation_exists"


class ReservationNotFound(Rejected):
    """The member has no open reservation for the work."""

    reason = "reservation_not_found"


class ReservationNotReady(Rejected):
    """The reservation holds no copy any more (fulfilled, cancelled, expired) or never did."""

    reason = "reservation_not_ready"


class HoldNotExpired(Rejected):
    """The reservation's pickup deadline has not passed (it was extended, or is still ahead)."""

    reason = "hold_not_expired"


class LoanNotOverdue(Rejected):
    """The loan is not overdue for the due date named: returned, renewed, or not yet due."""

    reason = "loan_not_overdue"


class LoanAlreadyOverdue(Rejected):
    """The loan was already marked overdue."""

    reason = "loan_already_overdue"


class LoanOverdue(Rejected):
    """The loan is marked overdue: it must be returned, it cannot be renewed."""

    reason = "loan_overdue"
