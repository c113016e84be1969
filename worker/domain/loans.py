"""Library loans: members, works, copies, loans and reservations — the rules only.

A copy moves between three states:

    available ──checkout──► on_loan ──return──┬─► on_hold   (first queued reservation
        ▲                                      │              becomes ready until a deadline)
        └──────────────────────────────────────┘─► available (nobody waiting)
    on_hold ──checkout by the holder──► on_loan   (the reservation is fulfilled)
    on_hold ──the holder cancels──► next in the queue, or available
    on_hold ──the hold expires (ready_until passed)──► next in the queue, or available

A loan past its due date is marked overdue by maintenance (`overdue_at`); a marked
loan cannot be renewed, only returned.

Invariant the handlers keep (under the work's row lock): a work with an available
copy has no queued reservations — every path that frees a copy offers it to the
queue first, and a new reservation takes an available copy if there is one.

Times (`now`) are passed in by the caller, so the rules are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from worker.domain.errors import (
    CopyDeleted,
    CopyHeldForAnotherMember,
    CopyNotAvailable,
    HoldNotExpired,
    LoanAlreadyOverdue,
    LoanLimitReached,
    LoanNotOverdue,
    LoanOverdue,
    MemberNotActive,
    RenewalLimitReached,
    ReservationExists,
    ReservationNotReady,
    WorkHasWaitingReservations,
)


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class CopyStatus(StrEnum):
    AVAILABLE = "available"
    ON_LOAN = "on_loan"
    ON_HOLD = "on_hold"


class ReservationStatus(StrEnum):
    QUEUED = "queued"
    READY = "ready"
    FULFILLED = "fulfilled"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


#: A reservation in one of these states still wants (or holds) a copy.
OPEN_RESERVATION_STATUSES = (ReservationStatus.QUEUED, ReservationStatus.READY)


@dataclass(frozen=True)
class LoanPolicy:
    """How long a loan lasts, how often it may be renewed, how long a hold waits."""

    loan_period: timedelta
    renewal_limit: int
    hold_window: timedelta


class Member:
    """A library member, known by the member number on their card."""

    id: int
    deleted_at: datetime | None

    def __init__(
        self,
        member_number: str,
        name: str,
        loan_limit: int,
        status: MemberStatus = MemberStatus.ACTIVE,
    ) -> None:
        self.member_number = member_number
        self.name = name
        self.loan_limit = loan_limit
        self.status = status
        self.deleted_at = None
        self.email: str | None = None
        self.phone: str | None = None
        self.phone_digits: str | None = None

    def update(self, name: str, loan_limit: int, status: MemberStatus) -> bool:
        """Replace name, limit and status; return whether anything changed."""
        wanted = (name, loan_limit, MemberStatus(status))
        changed = (self.name, self.loan_limit, MemberStatus(self.status)) != wanted
        self.name, self.loan_limit, self.status = wanted
        return changed

    def update_contacts(
        self, email: str | None, phone: str | None, phone_digits: str | None
    ) -> bool:
        """Replace the e-mail and the phone that are given (None keeps the stored one);
        return whether anything changed."""
        changed = False
        if email is not None and email != self.email:
            self.email, changed = email, True
        if phone is not None and (phone, phone_digits) != (self.phone, self.phone_digits):
            self.phone, self.phone_digits, changed = phone, phone_digits, True
        return changed

    def ensure_active(self) -> None:
        if MemberStatus(self.status) is not MemberStatus.ACTIVE:
            raise MemberNotActive(
                f"member {self.member_number} is {self.status}",
                member=self.member_number,
                status=str(self.status),
            )

    def ensure_can_borrow(self, active_loans: int) -> None:
        """Active and below the loan limit, given how many loans the member has open."""
        self.ensure_active()
        if active_loans >= self.loan_limit:
            raise LoanLimitReached(
                f"member {self.member_number} has {active_loans} active loan(s), "
                f"the limit is {self.loan_limit}",
                member=self.member_number,
                active_loans=active_loans,
                loan_limit=self.loan_limit,
            )


class Work:
    """A title in the catalogue; copies are the physical items of a work."""

    id: int

    def __init__(self, work_code: str, title: str, authors: Sequence[str] = ()) -> None:
        self.work_code = work_code
        self.title = title
        self.authors = list(authors)

    def update(self, title: str, authors: Sequence[str]) -> bool:
        """Replace title and authors; return whether anything changed."""
        changed = (self.title, list(self.authors)) != (title, list(authors))
        self.title, self.authors = title, list(authors)
        return changed


class Loan:
    """One lending of one copy to one member; closed loans stay as history."""

    id: int

    def __init__(
        self,
        copy_id: int,
        member_id: int,
        idempotency_key: str,
        checked_out_at: datetime,
        due_at: datetime,
    ) -> None:
        self.copy_id = copy_id
        self.member_id = member_id
        self.idempotency_key = idempotency_key
        self.checked_out_at = checked_out_at
        self.due_at = due_at
        self.returned_at: datetime | None = None
        self.renewals = 0
        self.overdue_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.returned_at is None

    def is_overdue(self, now: datetime) -> bool:
        return self.due_at < (self.returned_at or now)

    @property
    def due_date(self) -> date:
        """The day (UTC) the loan is due: what the overdue key and command name."""
        return self.due_at.astimezone(UTC).date()

    def mark_overdue(self, due_date: date, now: datetime) -> None:
        """Record that the loan, due on `due_date`, is overdue as of `now`.

        Refused if the loan was returned, is already marked, was renewed to another
        due date since `due_date` was read, or is not past due yet.
        """
        if not self.is_active:
            raise LoanNotOverdue(
                f"loan {self.id} was returned",
                loan_id=self.id,
                returned_at=_iso(self.returned_at),
            )
        if self.overdue_at is not None:
            raise LoanAlreadyOverdue(
                f"loan {self.id} was marked overdue already",
                loan_id=self.id,
                overdue_at=_iso(self.overdue_at),
            )
        if self.due_date != due_date or self.due_at >= now:
            raise LoanNotOverdue(
                f"loan {self.id} is due {_iso(self.due_at)}: not overdue for {due_date}",
                loan_id=self.id,
                due_at=_iso(self.due_at),
            )
        self.overdue_at = now

    def renew(self, now: datetime, policy: LoanPolicy, others_waiting: int) -> None:
        """One more loan period from the due date (or from now, if already overdue).

        A loan marked overdue (`mark_overdue`) is not renewed: it has to come back.
        """
        if self.overdue_at is not None:
            raise LoanOverdue(
                f"the loan is overdue since {_iso(self.due_at)}: return the copy",
                due_at=_iso(self.due_at),
                overdue_at=_iso(self.overdue_at),
            )
        if self.renewals >= policy.renewal_limit:
            raise RenewalLimitReached(
                f"the loan was renewed {self.renewals} time(s), the limit is "
                f"{policy.renewal_limit}",
                renewals=self.renewals,
                renewal_limit=policy.renewal_limit,
            )
        if others_waiting:
            raise WorkHasWaitingReservations(
                f"{others_waiting} other member(s) are waiting for this work",
                waiting=others_waiting,
            )
        self.due_at = max(self.due_at, now) + policy.loan_period
        self.renewals += 1

    def close(self, now: datetime) -> None:
        self.returned_at = now


class Reservation:
    """A member's claim on the next free copy of a work, served first come first served."""

    id: int

    def __init__(self, work_id: int, member_id: int, queued_at: datetime) -> None:
        self.work_id = work_id
        self.member_id = member_id
        self.queued_at = queued_at
        self.status = ReservationStatus.QUEUED
        self.ready_until: datetime | None = None
        self.copy_id: int | None = None

    @property
    def is_ready(self) -> bool:
        return ReservationStatus(self.status) is ReservationStatus.READY

    def make_ready(self, copy: Copy, until: datetime) -> None:
        self.status = ReservationStatus.READY
        self.copy_id = copy.id
        self.ready_until = until

    def fulfil(self) -> None:
        self.status = ReservationStatus.FULFILLED

    def cancel(self) -> None:
        """Close the reservation; `copy_id` stays as the record of what was held."""
        self.status = ReservationStatus.CANCELLED

    def expire(self) -> None:
        """The hold ran out; `copy_id` and `ready_until` stay as the record."""
        self.status = ReservationStatus.EXPIRED


class Copy:
    """One physical item of a work, identified by its barcode."""

    id: int
    deleted_at: datetime | None

    def __init__(self, work_id: int, barcode: str) -> None:
        self.work_id = work_id
        self.barcode = barcode
        self.status = CopyStatus.AVAILABLE
        self.deleted_at = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def check_out(
        self,
        member: Member,
        hold: Reservation | None,
        key: str,
        now: datetime,
        policy: LoanPolicy,
    ) -> Loan:
        """Lend the copy to `member`: not withdrawn, not on loan, not held for someone
        else. `hold` is the ready reservation holding this copy, if any; the member's
        own hold is fulfilled. The caller checks the member first (`ensure_can_borrow`).
        """
        if self.is_deleted:
            raise CopyDeleted(f"copy {self.barcode} was withdrawn", barcode=self.barcode)
        status = CopyStatus(self.status)
        if status is CopyStatus.ON_LOAN:
            raise CopyNotAvailable(f"copy {self.barcode} is on loan", barcode=self.barcode)
        if status is CopyStatus.ON_HOLD:
            if hold is None or hold.member_id != member.id:
                raise CopyHeldForAnotherMember(
                    f"copy {self.barcode} is on the hold shelf for another member",
                    barcode=self.barcode,
                    ready_until=hold.ready_until.isoformat() if hold and hold.ready_until else None,
                )
            hold.fulfil()
        self.status = CopyStatus.ON_LOAN
        return Loan(self.id, member.id, key, now, now + policy.loan_period)

    def release(
        self, queue_head: Reservation | None, now: datetime, policy: LoanPolicy
    ) -> Reservation | None:
        """The copy is free: hold it for the first queued reservation, else shelve it.

        Returns the reservation that now holds the copy, if any. A withdrawn copy is
        never handed out.
        """
        if queue_head is not None and not self.is_deleted:
            queue_head.make_ready(self, now + policy.hold_window)
            self.status = CopyStatus.ON_HOLD
            return queue_head
        self.status = CopyStatus.AVAILABLE
        return None

    def check_in(
        self, loan: Loan, queue_head: Reservation | None, now: datetime, policy: LoanPolicy
    ) -> Reservation | None:
        """Close `loan` and release the copy (see `release`)."""
        loan.close(now)
        return self.release(queue_head, now, policy)


def place_reservation(
    member: Member,
    work: Work,
    already_open: bool,
    available_copy: Copy | None,
    now: datetime,
    policy: LoanPolicy,
) -> Reservation:
    """Reserve `work` for `member`: ready at once on an available copy, else queued."""
    member.ensure_active()
    if already_open:
        raise ReservationExists(
            f"member {member.member_number} already has an open reservation for {work.work_code}",
            member=member.member_number,
            work=work.work_code,
        )
    reservation = Reservation(work.id, member.id, now)
    if available_copy is not None:
        available_copy.release(reservation, now, policy)
    return reservation


def cancel_reservation(
    reservation: Reservation,
    held_copy: Copy | None,
    queue_head: Reservation | None,
    now: datetime,
    policy: LoanPolicy,
) -> Reservation | None:
    """Cancel; a copy it held goes to `queue_head` (returned) or back on the shelf."""
    reservation.cancel()
    if held_copy is None:
        return None
    return held_copy.release(queue_head, now, policy)


def expire_reservation(
    reservation: Reservation,
    held_copy: Copy | None,
    queue_head: Reservation | None,
    now: datetime,
    policy: LoanPolicy,
) -> Reservation | None:
    """Expire a ready reservation whose pickup deadline passed before `now`.

    The held copy goes to `queue_head` (returned) or back on the shelf, as on a return.
    Refused if the reservation is no longer (or not yet) ready — collected, cancelled,
    expired — or if its deadline has not passed (it was extended).
    """
    if not reservation.is_ready:
        raise ReservationNotReady(
            f"reservation {reservation.id} is {reservation.status}, it holds no copy",
            reservation_id=reservation.id,
            status=str(reservation.status),
        )
    assert held_copy is not None, "the caller locks the copy a ready reservation holds"
    assert reservation.ready_until is not None, "a ready reservation has a deadline (CHECK)"
    if reservation.ready_until >= now:
        raise HoldNotExpired(
            f"reservation {reservation.id} is held until {_iso(reservation.ready_until)}",
            reservation_id=reservation.id,
            ready_until=_iso(reservation.ready_until),
        )
    reservation.expire()
    return held_copy.release(queue_head, now, policy)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
