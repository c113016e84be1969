"""Hold expiry and overdue loans on plain objects, and the commands maintenance sends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from producers.commands import ExpireReservation, MarkLoanOverdue, parse_command
from worker.domain import errors
from worker.domain.errors import Rejected
from worker.domain.loans import (
    Copy,
    CopyStatus,
    Loan,
    LoanPolicy,
    Reservation,
    ReservationStatus,
    expire_reservation,
)
from worker.service.maintenance.loans import (
    expiry_command,
    overdue_command,
    overdue_key,
    reservation_expiry_key,
)

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = LoanPolicy(loan_period=timedelta(days=21), renewal_limit=2, hold_window=timedelta(days=7))


def held_copy(deleted: bool = False) -> tuple[Copy, Reservation]:
    """A copy on the hold shelf for member 1, whose hold ran out an hour ago."""
    item = Copy(work_id=7, barcode="C-1")
    item.id = 11
    hold = queued(member_id=1)
    item.release(hold, NOW - timedelta(days=7, hours=1), POLICY)
    item.deleted_at = NOW if deleted else None  # withdrawn while on the hold shelf
    return item, hold


def queued(member_id: int) -> Reservation:
    reservation = Reservation(work_id=7, member_id=member_id, queued_at=NOW - timedelta(days=9))
    reservation.id = 100 + member_id
    return reservation


def loan(due_in: timedelta) -> Loan:
    item = Loan(11, 1, "k", NOW - timedelta(days=30), NOW + due_in)
    item.id = 5
    return item


def reason_of(excinfo: pytest.ExceptionInfo[Rejected]) -> str:
    return excinfo.value.reason


# -- expiring holds -----------------------------------------------------------------------


def test_an_expired_hold_passes_the_copy_to_the_next_in_the_queue():
    item, hold = held_copy()
    waiting = queued(member_id=2)

    handed = expire_reservation(hold, item, waiting, NOW, POLICY)

    assert hold.status == ReservationStatus.EXPIRED
    assert (hold.copy_id, hold.ready_until) == (11, NOW - timedelta(hours=1))  # the record
    assert handed is waiting
    assert (waiting.status, waiting.copy_id, waiting.ready_until) == (
        ReservationStatus.READY,
        11,
        NOW + POLICY.hold_window,
    )
    assert item.status == CopyStatus.ON_HOLD


def test_an_expired_hold_with_nobody_waiting_shelves_the_copy():
    item, hold = held_copy()

    assert expire_reservation(hold, item, None, NOW, POLICY) is None
    assert (hold.status, item.status) == (ReservationStatus.EXPIRED, CopyStatus.AVAILABLE)


def test_a_withdrawn_copy_whose_hold_expires_is_not_handed_on():
    item, hold = held_copy(deleted=True)
    waiting = queued(member_id=2)

    assert expire_reservation(hold, item, waiting, NOW, POLICY) is None
    assert waiting.status == ReservationStatus.QUEUED
    assert item.status == CopyStatus.AVAILABLE


@pytest.mark.parametrize(
    "status", [ReservationStatus.FULFILLED, ReservationStatus.CANCELLED, ReservationStatus.EXPIRED]
)
def test_a_reservation_no_longer_ready_is_not_expired(status: ReservationStatus):
    item, hold = held_copy()
    hold.status = status
    before = item.status

    with pytest.raises(Rejected) as excinfo:
        expire_reservation(hold, item, queued(member_id=2), NOW, POLICY)

    assert reason_of(excinfo) == "reservation_not_ready"
    assert excinfo.value.details == {"reservation_id": 101, "status": str(status)}
    assert (hold.status, item.status) == (status, before)


def test_a_hold_whose_deadline_is_ahead_is_not_expired():
    item, hold = held_copy()
    hold.ready_until = NOW + timedelta(days=2)  # extended

    with pytest.raises(Rejected) as excinfo:
        expire_reservation(hold, item, None, NOW, POLICY)

    assert reason_of(excinfo) == "hold_not_expired"
    assert excinfo.value.details["ready_until"] == (NOW + timedelta(days=2)).isoformat()
    assert (hold.status, item.status) == (ReservationStatus.READY, CopyStatus.ON_HOLD)


# -- overdue loans ------------------------------------------------------------------------


def test_a_loan_past_due_is_marked_overdue_and_can_no_longer_be_renewed():
    late = loan(due_in=-timedelta(days=2))

    late.mark_overdue(late.due_date, NOW)
    with pytest.raises(Rejected) as excinfo:
        late.renew(NOW, POLICY, others_waiting=0)

    assert late.overdue_at == NOW
    assert reason_of(excinfo) == "loan_overdue"
    assert (late.renewals, late.due_at) == (0, NOW - timedelta(days=2))


def test_an_unmarked_loan_past_due_is_still_renewed_from_today():
    late = loan(due_in=-timedelta(days=2))
    late.renew(NOW, POLICY, others_waiting=0)
    assert late.due_at == NOW + POLICY.loan_period


@pytest.mark.parametrize(
    ("prepare", "due_date", "reason"),
    [
        (lambda item: item.close(NOW), None, "loan_not_overdue"),
        (lambda item: item.mark_overdue(item.due_date, NOW), None, "loan_already_overdue"),
        (lambda item: None, date(2026, 2, 1), "loan_not_overdue"),  # renewed since
    ],
    ids=["returned", "already-marked", "due-date-changed"],
)
def test_marking_refused(prepare, due_date: date | None, reason: str):
    late = loan(due_in=-timedelta(days=2))
    prepare(late)
    marked_before = late.overdue_at

    with pytest.raises(Rejected) as excinfo:
        late.mark_overdue(due_date or late.due_date, NOW + timedelta(minutes=1))

    assert reason_of(excinfo) == reason
    assert late.overdue_at == marked_before


def test_a_loan_not_yet_due_is_not_marked():
    current = loan(due_in=timedelta(hours=1))
    with pytest.raises(Rejected) as excinfo:
        current.mark_overdue(current.due_date, NOW)
    assert reason_of(excinfo) == "loan_not_overdue"
    assert current.overdue_at is None


def test_the_new_reason_codes_are_distinct():
    codes = [
        c.reason
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, Rejected) and c is not Rejected
    ]
    new = {
        "reservation_not_ready",
        "hold_not_expired",
        "loan_not_overdue",
        "loan_already_overdue",
        "loan_overdue",
    }
    assert new <= set(codes) and len(codes) == len(set(codes))


# -- the commands and their deterministic keys ----------------------------------------------


def test_the_expiry_key_and_payload_do_not_depend_on_the_session_time_zone():
    in_utc = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
    in_paris = in_utc.astimezone(timezone(timedelta(hours=1)))

    first, second = expiry_command(42, in_utc), expiry_command(42, in_paris)

    assert first.key == second.key == "expire-reservation:42:2026-03-01T09:30:00.123456Z"
    assert first.fingerprint() == second.fingerprint()
    assert reservation_expiry_key(42, in_paris) == first.key
    parsed = parse_command(first.message(), "expire_reservation")
    assert isinstance(parsed, ExpireReservation)
    assert parsed.ready_until == in_utc and parsed.fingerprint() == first.fingerprint()


def test_the_overdue_key_names_the_loan_and_its_due_date_in_utc():
    # 23:30 at UTC-5 on 1 March is 2 March in UTC
    due_at = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))

    command = overdue_command(7, due_at)

    assert command.key == overdue_key(7, date(2026, 3, 2)) == "overdue:7:2026-03-02"
    assert command.message() == {
        "type": "mark_loan_overdue",
        "key": "overdue:7:2026-03-02",
        "loan_id": 7,
        "due_date": "2026-03-02",
    }
    assert isinstance(parse_command(command.message()), MarkLoanOverdue)


@pytest.mark.parametrize(
    "message",
    [
        {
            "type": "expire_reservation",
            "key": "k",
            "reservation_id": 0,
            "ready_until": "2026-03-01T00:00:00Z",
        },
        {
            "type": "expire_reservation",
            "key": "k",
            "reservation_id": 3,
            "ready_until": "2026-03-01T00:00:00",
        },
        {"type": "mark_loan_overdue", "key": "k", "loan_id": "7", "due_date": "2026-03-01"},
        {"type": "mark_loan_overdue", "key": "k", "loan_id": 7, "due_date": "someday"},
    ],
    ids=["id-not-positive", "deadline-without-time-zone", "id-as-text", "not-a-date"],
)
def test_invalid_maintenance_commands_are_refused(message):
    from producers.commands import InvalidCommand

    with pytest.raises(InvalidCommand):
        parse_command(message)
