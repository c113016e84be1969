"""The loan rules on plain objects: no database, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.domain import errors
from worker.domain.errors import Rejected
from worker.domain.loans import (
    Copy,
    CopyStatus,
    Loan,
    LoanPolicy,
    Member,
    MemberStatus,
    Reservation,
    ReservationStatus,
    Work,
    cancel_reservation,
    place_reservation,
)

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = LoanPolicy(loan_period=timedelta(days=21), renewal_limit=2, hold_window=timedelta(days=7))


def member(id_: int = 1, limit: int = 3, status: MemberStatus = MemberStatus.ACTIVE) -> Member:
    m = Member(f"M-{id_}", "Reader", limit, status)
    m.id = id_
    return m


def copy(status: CopyStatus = CopyStatus.AVAILABLE, deleted: bool = False) -> Copy:
    c = Copy(work_id=7, barcode="C-1")
    c.id, c.status = 11, status
    c.deleted_at = NOW if deleted else None
    return c


def work() -> Work:
    w = Work("W-7", "A Book", ["An Author"])
    w.id = 7
    return w


def queued(member_id: int, minutes: int = 0) -> Reservation:
    r = Reservation(work_id=7, member_id=member_id, queued_at=NOW + timedelta(minutes=minutes))
    r.id = 100 + member_id
    return r


def reason_of(excinfo: pytest.ExceptionInfo[Rejected]) -> str:
    return excinfo.value.reason


# -- checkout -----------------------------------------------------------------------------


def test_checkout_lends_an_available_copy_for_one_loan_period():
    reader, item = member(), copy()
    reader.ensure_can_borrow(active_loans=2)

    loan = item.check_out(reader, None, "key-1", NOW, POLICY)

    assert (loan.member_id, loan.copy_id, loan.idempotency_key) == (1, 11, "key-1")
    assert loan.due_at == NOW + timedelta(days=21)
    assert loan.is_active and loan.renewals == 0
    assert item.status == CopyStatus.ON_LOAN


def test_a_member_at_the_loan_limit_may_not_borrow():
    with pytest.raises(Rejected) as excinfo:
        member(limit=3).ensure_can_borrow(active_loans=3)
    assert reason_of(excinfo) == "loan_limit_reached"
    assert excinfo.value.details == {"member": "M-1", "active_loans": 3, "loan_limit": 3}


def test_a_suspended_member_may_not_borrow_even_under_the_limit():
    with pytest.raises(Rejected) as excinfo:
        member(status=MemberStatus.SUSPENDED).ensure_can_borrow(active_loans=0)
    assert reason_of(excinfo) == "member_not_active"


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (copy(deleted=True), "copy_deleted"),
        (copy(CopyStatus.ON_LOAN), "copy_not_available"),
        (copy(CopyStatus.ON_HOLD), "copy_held_for_another_member"),
    ],
)
def test_copies_that_cannot_be_lent(item: Copy, reason: str):
    before = item.status
    with pytest.raises(Rejected) as excinfo:
        item.check_out(member(), None, "k", NOW, POLICY)
    assert reason_of(excinfo) == reason
    assert item.status == before


def test_a_held_copy_goes_only_to_the_member_it_is_held_for():
    holder, other = member(1), member(2)
    item, hold = copy(), queued(member_id=1)
    item.release(hold, NOW, POLICY)

    with pytest.raises(Rejected) as excinfo:
        item.check_out(other, hold, "k2", NOW, POLICY)
    assert reason_of(excinfo) == "copy_held_for_another_member"
    assert excinfo.value.details["ready_until"] == (NOW + timedelta(days=7)).isoformat()

    loan = item.check_out(holder, hold, "k1", NOW, POLICY)
    assert loan.member_id == 1
    assert hold.status == ReservationStatus.FULFILLED


# -- return and the hold shelf ------------------------------------------------------------


def test_return_hands_the_copy_to_the_first_in_the_queue_until_a_deadline():
    item = copy(CopyStatus.ON_LOAN)
    loan = Loan(11, 1, "k", NOW - timedelta(days=3), NOW + timedelta(days=18))
    first = queued(member_id=2)

    hold = item.check_in(loan, first, NOW, POLICY)

    assert loan.returned_at == NOW and not loan.is_active and not loan.is_overdue(NOW)
    assert hold is first
    assert (first.status, first.copy_id, first.ready_until) == (
        ReservationStatus.READY,
        11,
        NOW + timedelta(days=7),
    )
    assert item.status == CopyStatus.ON_HOLD


def test_return_with_nobody_waiting_shelves_the_copy_and_notes_overdue():
    item = copy(CopyStatus.ON_LOAN)
    loan = Loan(11, 1, "k", NOW - timedelta(days=30), NOW - timedelta(days=9))

    assert item.check_in(loan, None, NOW, POLICY) is None
    assert item.status == CopyStatus.AVAILABLE
    assert loan.is_overdue(NOW)


def test_a_withdrawn_copy_is_never_put_on_the_hold_shelf():
    item = copy(CopyStatus.ON_LOAN, deleted=True)
    waiting = queued(member_id=2)

    assert item.release(waiting, NOW, POLICY) is None
    assert waiting.status == ReservationStatus.QUEUED


# -- renewals -----------------------------------------------------------------------------


def test_renewal_extends_from_the_due_date_up_to_the_limit():
    loan = Loan(11, 1, "k", NOW, NOW + timedelta(days=21))

    loan.renew(NOW, POLICY, others_waiting=0)
    loan.renew(NOW, POLICY, others_waiting=0)
    with pytest.raises(Rejected) as excinfo:
        loan.renew(NOW, POLICY, others_waiting=0)

    assert reason_of(excinfo) == "renewal_limit_reached"
    assert loan.renewals == 2
    assert loan.due_at == NOW + timedelta(days=63)


def test_an_overdue_loan_is_renewed_from_today():
    loan = Loan(11, 1, "k", NOW - timedelta(days=30), NOW - timedelta(days=9))
    loan.renew(NOW, POLICY, others_waiting=0)
    assert loan.due_at == NOW + timedelta(days=21)


def test_renewal_is_refused_while_others_wait_for_the_work():
    loan = Loan(11, 1, "k", NOW, NOW + timedelta(days=21))
    with pytest.raises(Rejected) as excinfo:
        loan.renew(NOW, POLICY, others_waiting=2)
    assert reason_of(excinfo) == "work_has_waiting_reservations"
    assert excinfo.value.details == {"waiting": 2}
    assert (loan.renewals, loan.due_at) == (0, NOW + timedelta(days=21))


# -- reservations -------------------------------------------------------------------------


def test_reserving_with_a_copy_on_the_shelf_holds_it_at_once():
    item = copy()
    reservation = place_reservation(member(), work(), False, item, NOW, POLICY)
    assert reservation.status == ReservationStatus.READY and reservation.copy_id == 11
    assert item.status == CopyStatus.ON_HOLD


def test_reserving_with_no_copy_free_joins_the_queue():
    reservation = place_reservation(member(), work(), False, None, NOW, POLICY)
    assert (reservation.status, reservation.copy_id, reservation.ready_until) == (
        ReservationStatus.QUEUED,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("reader", "already_open", "reason"),
    [
        (member(status=MemberStatus.SUSPENDED), False, "member_not_active"),
        (member(), True, "reservation_exists"),
    ],
)
def test_reservations_that_are_refused(reader: Member, already_open: bool, reason: str):
    with pytest.raises(Rejected) as excinfo:
        place_reservation(reader, work(), already_open, None, NOW, POLICY)
    assert reason_of(excinfo) == reason


def test_cancelling_a_ready_reservation_passes_the_copy_to_the_next_member():
    item, first, second = copy(), queued(1), queued(2, minutes=5)
    item.release(first, NOW, POLICY)

    hold = cancel_reservation(first, item, second, NOW, POLICY)

    assert first.status == ReservationStatus.CANCELLED
    assert hold is second and second.status == ReservationStatus.READY
    assert item.status == CopyStatus.ON_HOLD


def test_cancelling_a_queued_reservation_moves_no_copy():
    waiting = queued(1)
    assert cancel_reservation(waiting, None, None, NOW, POLICY) is None
    assert waiting.status == ReservationStatus.CANCELLED


# -- members and the catalogue ------------------------------------------------------------


def test_member_and_work_updates_report_whether_anything_changed():
    reader, book = member(limit=3), work()
    assert not reader.update("Reader", 3, MemberStatus.ACTIVE)
    assert reader.update("Reader", 3, MemberStatus.SUSPENDED)
    assert not book.update("A Book", ["An Author"])
    assert book.update("A Book", ["An Author", "Another"])


def test_reason_codes_are_stable_and_distinct():
    """Upstream systems branch on these strings: renaming one is a breaking change."""
    subclasses = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, Rejected) and c is not Rejected
    ]
    codes = {c.reason for c in subclasses}
    assert {
        "member_not_found",
        "member_not_active",
        "loan_limit_reached",
        "work_not_found",
        "copy_not_found",
        "copy_deleted",
        "copy_not_available",
        "copy_held_for_another_member",
        "barcode_in_use",
        "loan_not_found",
        "renewal_limit_reached",
        "work_has_waiting_reservations",
        "reservation_exists",
        "reservation_not_found",
    } <= codes
    assert len(codes) == len(subclasses)
