"""Library loan handlers: `handler(command, uow, ctx) -> result`.

Each runs inside the executor's transaction, after the ledger claim; a `Rejected`
error becomes the stored outcome. Rows are locked in the order documented in
`worker/adapters/loan_repositories.py` (member → work → copy → reservation → loan).
Loans are updated without a row lock: their `version` column makes an update from a
stale read raise `StaleDataError`, which the runner retries as a transient error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from producers.commands import (
    AddCopy,
    AddWork,
    CancelReservation,
    CheckoutCopy,
    ExpireReservation,
    MarkLoanOverdue,
    PlaceReservation,
    RegisterMember,
    RenewLoan,
    ReturnCopy,
)
from worker.domain import loans as rules
from worker.domain.contacts import phone_key
from worker.domain.errors import (
    BarcodeInUse,
    CopyNotFound,
    IdempotencyKeyReused,
    LoanNotFound,
    MemberNotFound,
    ReservationNotFound,
    WorkNotFound,
)
from worker.domain.loans import (
    Copy,
    CopyStatus,
    Member,
    MemberStatus,
    Reservation,
    ReservationStatus,
    Work,
)
from worker.service.context import CommandContext
from worker.service.unit_of_work import UnitOfWork


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _member(uow: UnitOfWork, number: str, *, lock: bool = False) -> Member:
    member = uow.members.lock(number) if lock else uow.members.get(number)
    if member is None:
        raise MemberNotFound(f"no member {number}", member=number)
    return member


def _locked_work(uow: UnitOfWork, code: str) -> Work:
    work = uow.works.lock(code)
    if work is None:
        raise WorkNotFound(f"no work {code}", work=code)
    return work


def _hold_result(uow: UnitOfWork, hold: Reservation | None) -> dict[str, Any]:
    """Who a freed copy is now held for, and until when."""
    if hold is None:
        return {"held_for": None, "ready_until": None}
    return {
        "held_for": uow.members.number_of(hold.member_id),
        "ready_until": _iso(hold.ready_until),
    }


# -- catalogue and members ----------------------------------------------------------------


def register_member(
    command: RegisterMember, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    phone_digits = phone_key(command.phone, ctx.phone_region)
    contacts = {"email": command.email, "phone": command.phone, "phone_digits": phone_digits}
    member, created = uow.members.ensure(
        command.member, command.name, command.loan_limit, command.status, contacts
    )
    changed = created or member.update(
        command.name, command.loan_limit, MemberStatus(command.status)
    )
    changed = member.update_contacts(command.email, command.phone, phone_digits) or changed
    uow.flush()
    return {
        "member": member.member_number,
        "created": created,
        "changed": changed,
        "status": str(member.status),
        "loan_limit": member.loan_limit,
    }


def add_work(command: AddWork, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    work, created = uow.works.ensure(command.work, command.title, command.authors)
    changed = created or work.update(command.title, command.authors)
    uow.flush()
    return {"work": work.work_code, "created": created, "changed": changed}


def add_copy(command: AddCopy, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    work = _locked_work(uow, command.work)
    copy = uow.copies.insert(work.id, command.barcode)
    if copy is None:
        raise BarcodeInUse(f"a copy with barcode {command.barcode} exists", barcode=command.barcode)
    # a new copy is a freed copy: the first member waiting for the work gets it
    hold = copy.release(uow.reservations.lock_queue_head(work.id), uow.clock.now(), ctx.loan_policy)
    uow.flush()
    return {
        "barcode": copy.barcode,
        "work": work.work_code,
        "status": str(copy.status),
        **_hold_result(uow, hold),
    }


# -- lending ------------------------------------------------------------------------------


def _copy_or_reject(copy: Copy | None, barcode: str) -> Copy:
    if copy is None:
        raise CopyNotFound(f"no copy with barcode {barcode}", barcode=barcode)
    return copy


def checkout_copy(command: CheckoutCopy, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    member = _member(uow, command.member, lock=True)
    member.ensure_can_borrow(uow.loans.count_active(member.id))
    copy = _copy_or_reject(uow.copies.lock(command.barcode), command.barcode)
    ctx.failpoint("after_lock")
    hold = (
        uow.reservations.lock_holding(copy.id)
        if CopyStatus(copy.status) is CopyStatus.ON_HOLD
        else None
    )
    loan = copy.check_out(member, hold, command.key, uow.clock.now(), ctx.loan_policy)
    uow.loans.add(loan)
    uow.flush()
    return {
        "loan_id": loan.id,
        "member": member.member_number,
        "barcode": copy.barcode,
        "due_at": _iso(loan.due_at),
        "reservation_fulfilled": hold is not None,
    }


def return_copy(command: ReturnCopy, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    work_id = uow.copies.work_id_of(command.barcode)
    if work_id is None:
        raise CopyNotFound(f"no copy with barcode {command.barcode}", barcode=command.barcode)
    uow.works.lock_by_id(work_id)  # the work's queue may hand this copy on
    copy = _copy_or_reject(uow.copies.lock(command.barcode), command.barcode)
    ctx.failpoint("after_lock")
    loan = uow.loans.active_for_copy(copy.id)
    if loan is None:
        raise LoanNotFound(f"copy {copy.barcode} is not on loan", barcode=copy.barcode)
    now = uow.clock.now()
    head = None if copy.is_deleted else uow.reservations.lock_queue_head(work_id)
    hold = copy.check_in(loan, head, now, ctx.loan_policy)
    uow.flush()  # the versioned loan update: a stale read raises here
    return {
        "barcode": copy.barcode,
        "member": uow.members.number_of(loan.member_id),
        "returned_at": _iso(loan.returned_at),
        "overdue": loan.is_overdue(now),
        "copy_status": str(copy.status),
        **_hold_result(uow, hold),
    }


def renew_loan(command: RenewLoan, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    member = _member(uow, command.member)
    member.ensure_active()
    copy = _copy_or_reject(uow.copies.get(command.barcode), command.barcode)
    loan = uow.loans.active_for_copy(copy.id)
    if loan is None or loan.member_id != member.id:
        raise LoanNotFound(
            f"member {member.member_number} has no active loan of copy {copy.barcode}",
            member=member.member_number,
            barcode=copy.barcode,
        )
    waiting = uow.reservations.count_waiting(copy.work_id, except_member_id=member.id)
    loan.renew(uow.clock.now(), ctx.loan_policy, waiting)
    uow.flush()  # UPDATE … WHERE version = <read>: a concurrent change raises StaleDataError
    return {
        "member": member.member_number,
        "barcode": copy.barcode,
        "due_at": _iso(loan.due_at),
        "renewals": loan.renewals,
    }


# -- reservations -------------------------------------------------------------------------


def place_reservation(
    command: PlaceReservation, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    member = _member(uow, command.member)
    member.ensure_active()
    work = _locked_work(uow, command.work)
    already_open = uow.reservations.open_for(work.id, member.id) is not None
    available = None if already_open else uow.copies.lock_available(work.id)
    reservation = rules.place_reservation(
        member, work, already_open, available, uow.clock.now(), ctx.loan_policy
    )
    uow.reservations.add(reservation)
    uow.flush()
    result: dict[str, Any] = {
        "reservation_id": reservation.id,
        "member": member.member_number,
        "work": work.work_code,
        "status": str(reservation.status),
    }
    if available is not None:
        result.update(barcode=available.barcode, ready_until=_iso(reservation.ready_until))
    else:
        result.update(position=uow.reservations.position(reservation))
    return result


def cancel_reservation(
    command: CancelReservation, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    member = _member(uow, command.member)
    work = _locked_work(uow, command.work)
    reservation = uow.reservations.open_for(work.id, member.id)
    # A ready reservation holds a copy: lock the copy before the reservation (lock order),
    # then re-read the reservation under its lock — a checkout may have fulfilled it.
    held = (
        uow.copies.lock_by_id(reservation.copy_id)
        if reservation is not None and reservation.is_ready and reservation.copy_id
        else None
    )
    reservation = uow.reservations.open_for(work.id, member.id, lock=True)
    if reservation is None:
        raise ReservationNotFound(
            f"member {member.member_number} has no open reservation for {work.work_code}",
            member=member.member_number,
            work=work.work_code,
        )
    if not reservation.is_ready:
        held = None
    head = uow.reservations.lock_queue_head(work.id) if held is not None else None
    hold = rules.cancel_reservation(reservation, held, head, uow.clock.now(), ctx.loan_policy)
    uow.flush()
    return {
        "member": member.member_number,
        "work": work.work_code,
        "status": ReservationStatus.CANCELLED.value,
        "released_barcode": held.barcode if held is not None else None,
        **_hold_result(uow, hold),
    }


# -- maintenance: sent by the loan sweeps (worker/service/maintenance/loans.py) -----------


def expire_reservation(
    command: ExpireReservation, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    """Expire a hold whose pickup deadline passed; the copy goes on as on a return.

    Locks as a return does (work → copy → reservation), so it serializes with the
    checkout that would collect the copy and with everything that changes the queue.
    """
    found = uow.reservations.get(command.reservation_id)
    if found is None:
        raise ReservationNotFound(
            f"no reservation {command.reservation_id}", reservation_id=command.reservation_id
        )
    work = uow.works.lock_by_id(found.work_id)  # a reservation's work never changes
    # Under the work's lock no reservation of the work becomes ready, so the copy read
    # here is the one it holds, if any; lock it before the reservation (lock order),
    # then read the reservation under its lock — a checkout may have collected it.
    current = uow.reservations.get(command.reservation_id)
    assert current is not None
    held = uow.copies.lock_by_id(current.copy_id) if current.is_ready and current.copy_id else None
    ctx.failpoint("after_lock")
    reservation = uow.reservations.lock(command.reservation_id)
    head = uow.reservations.lock_queue_head(work.id) if reservation.is_ready else None
    hold = rules.expire_reservation(reservation, held, head, uow.clock.now(), ctx.loan_policy)
    uow.flush()
    assert held is not None  # expire_reservation refused otherwise
    return {
        "reservation_id": reservation.id,
        "member": uow.members.number_of(reservation.member_id),
        "work": work.work_code,
        "status": ReservationStatus.EXPIRED.value,
        "released_barcode": held.barcode,
        "copy_status": str(held.status),
        **_hold_result(uow, hold),
    }


def mark_loan_overdue(
    command: MarkLoanOverdue, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    """Mark an active loan overdue for the due date the sweep saw.

    No row lock: the loan's `version` makes a concurrent return or renewal and this
    update conflict (StaleDataError, retried), and the retry sees the new state.
    """
    loan = uow.loans.get(command.loan_id)
    if loan is None:
        raise LoanNotFound(f"no loan {command.loan_id}", loan_id=command.loan_id)
    loan.mark_overdue(command.due_date, uow.clock.now())
    uow.flush()
    return {
        "loan_id": loan.id,
        "member": uow.members.number_of(loan.member_id),
        "barcode": uow.copies.barcode_of(loan.copy_id),
        "due_at": _iso(loan.due_at),
        "overdue_at": _iso(loan.overdue_at),
    }


def replay_existing_loan(command: CheckoutCopy, uow: UnitOfWork) -> dict[str, Any]:
    """The loan this checkout's key already created, answered as the checkout's result.

    Reached when the key's ledger row was purged (retention) and the checkout is
    delivered again: the rules reject it (the copy is on loan — by this very loan — or
    the member is at the limit), or the insert hits `uq_loans_idempotency_key`; either
    way the existing loan is the answer. `due_at` is the loan's due date now (a renewal
    may have moved it since).
    """
    loan = uow.loans.by_idempotency_key(command.key)
    if loan is None:
        raise LookupError(f"no loan for key {command.key}")
    member = uow.members.number_of(loan.member_id)
    barcode = uow.copies.barcode_of(loan.copy_id)
    if (member, barcode) != (command.member, command.barcode):
        raise IdempotencyKeyReused(
            f"key {command.key} was already used to lend {barcode} to {member}",
            original_type=command.type,
        )
    return {
        "loan_id": loan.id,
        "member": member,
        "barcode": barcode,
        "due_at": _iso(loan.due_at),
        "reservation_fulfilled": uow.reservations.fulfilled_by(loan),
    }


HANDLERS = {
    RegisterMember: register_member,
    AddWork: add_work,
    AddCopy: add_copy,
    CheckoutCopy: checkout_copy,
    ReturnCopy: return_copy,
    RenewLoan: renew_loan,
    PlaceReservation: place_reservation,
    CancelReservation: cancel_reservation,
    ExpireReservation: expire_reservation,
    MarkLoanOverdue: mark_loan_overdue,
}

#: Commands whose business row carries the idempotency key under a unique constraint:
#: after the ledger row is purged, a redelivery replays the existing row.
RECOVERIES = {CheckoutCopy: replay_existing_loan}
