"""Loan sweeps on real PostgreSQL: expiring holds (the copy moves on) and marking loans
overdue, through commands with deterministic keys."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from producers.commands import (
    CancelReservation,
    CheckoutCopy,
    MarkLoanOverdue,
    PlaceReservation,
    RenewLoan,
    ReturnCopy,
)
from tests.support.commands import run
from tests.support.concurrency import at_once
from tests.support.ids import unique
from tests.support.library import copy_status, loans_of_copy, new_member, new_work, rows
from tests.support.sessions import wait_until_sessions_wait
from worker.adapters.advisory_locks import advisory_lock
from worker.adapters.errors import constraint_of
from worker.service.maintenance.loans import (
    EXPIRE_READY_RESERVATIONS_SWEEP,
    MARK_OVERDUE_LOANS_SWEEP,
    expiry_command,
    overdue_command,
    overdue_key,
    reservation_expiry_key,
)
from worker.service.maintenance.report import SKIPPED_LOCKED
from worker.service.maintenance.sweeps import CommandSweep, run_sweep

# -- building the situations --------------------------------------------------------------


def reserve(member: str, work: str) -> PlaceReservation:
    return PlaceReservation(key=unique("res"), member=member, work=work)


def held_work(runner, waiting: int = 0) -> dict[str, Any]:
    """A work with one copy on the hold shelf for `holder`, and `waiting` members queued."""
    holder = new_member(runner)
    work, [barcode] = new_work(runner)
    held = run(runner, reserve(holder, work))
    assert held.result["status"] == "ready"
    queue = [new_member(runner) for _ in range(waiting)]
    for member in queue:
        assert run(runner, reserve(member, work)).result["status"] == "queued"
    return {
        "work": work,
        "barcode": barcode,
        "holder": holder,
        "queue": queue,
        "reservation_id": held.result["reservation_id"],
    }


def lapse_hold(engine, reservation_id: int, ago: str = "1 hour") -> datetime:
    """Move a ready reservation's pickup deadline into the past; return the new deadline."""
    with engine.begin() as connection:
        return connection.execute(
            text(
                "UPDATE reservations SET ready_until = now() - CAST(:ago AS interval) "
                "WHERE id = :id AND status = 'ready' RETURNING ready_until"
            ),
            {"id": reservation_id, "ago": ago},
        ).scalar_one()


def set_hold_deadline(engine, reservation_id: int, interval_from_now: str) -> datetime:
    with engine.begin() as connection:
        return connection.execute(
            text(
                "UPDATE reservations SET ready_until = now() + CAST(:i AS interval) "
                "WHERE id = :id RETURNING ready_until"
            ),
            {"id": reservation_id, "i": interval_from_now},
        ).scalar_one()


def reservation(engine, reservation_id: int) -> dict[str, Any]:
    [row] = rows(
        engine,
        "SELECT r.status, r.ready_until, c.barcode, m.member_number AS member "
        "FROM reservations r JOIN members m ON m.id = r.member_id "
        "LEFT JOIN copies c ON c.id = r.copy_id WHERE r.id = :id",
        id=reservation_id,
    )
    return row


def queue_of(engine, work: str) -> list[tuple[str, str]]:
    """(member, status) of the work's reservations, in queue order."""
    return [
        (row["member"], row["status"])
        for row in rows(
            engine,
            "SELECT m.member_number AS member, r.status FROM reservations r "
            "JOIN works w ON w.id = r.work_id JOIN members m ON m.id = r.member_id "
            "WHERE w.work_code = :w ORDER BY r.queued_at, r.id",
            w=work,
        )
    ]


def lent_copy(runner, engine, days_overdue: int = 2) -> dict[str, Any]:
    """A member with a copy on loan, due `days_overdue` days ago (negative: not yet due)."""
    member = new_member(runner)
    work, [barcode] = new_work(runner)
    out = run(runner, CheckoutCopy(key=unique("out"), member=member, barcode=barcode))
    with engine.begin() as connection:
        due_at = connection.execute(
            text(
                "UPDATE loans SET checked_out_at = now() - interval '30 days', "
                "due_at = now() - make_interval(days => :d) WHERE id = :id RETURNING due_at"
            ),
            {"id": out.result["loan_id"], "d": days_overdue},
        ).scalar_one()
    return {
        "member": member,
        "work": work,
        "barcode": barcode,
        "loan_id": out.result["loan_id"],
        "due_at": due_at,
    }


def loan_row(engine, loan_id: int) -> dict[str, Any]:
    [row] = rows(
        engine,
        "SELECT due_at, returned_at, overdue_at, renewals, version FROM loans WHERE id = :id",
        id=loan_id,
    )
    return row


def ledger(engine, key: str) -> list[dict[str, Any]]:
    return rows(
        engine,
        "SELECT status, reason, result FROM command_ledger WHERE idempotency_key = :k",
        k=key,
    )


@pytest.fixture
def sweep(tuned, engine, runner_for) -> Callable[..., Any]:
    """`sweep(SWEEP, **settings overrides)`: one run of a loan sweep, as beat would run it."""

    def run_once(which: CommandSweep, **overrides: Any):
        settings = tuned(**overrides)
        return run_sweep(which, settings, engine, runner_for(settings))

    return run_once


def drain(sweep) -> None:
    """Apply whatever other tests left due, so a test counts only its own rows."""
    for which in (EXPIRE_READY_RESERVATIONS_SWEEP, MARK_OVERDUE_LOANS_SWEEP):
        sweep(which)


# -- expiring holds -----------------------------------------------------------------------


def test_an_expired_hold_goes_to_the_next_in_the_queue_or_back_on_the_shelf(
    runner, engine, sweep, settings
):
    queued_for = held_work(runner, waiting=2)
    nobody_waits = held_work(runner)
    still_held = held_work(runner, waiting=1)
    deadline = lapse_hold(engine, queued_for["reservation_id"])
    lapse_hold(engine, nobody_waits["reservation_id"])

    report = sweep(EXPIRE_READY_RESERVATIONS_SWEEP)

    assert report.skipped is None and report.figures["applied"] >= 2
    first, second = queued_for["queue"]
    assert queue_of(engine, queued_for["work"]) == [
        (queued_for["holder"], "expired"),
        (first, "ready"),
        (second, "queued"),
    ]
    [handed] = rows(
        engine,
        "SELECT r.ready_until, now() AS now FROM reservations r JOIN members m "
        "ON m.id = r.member_id WHERE m.member_number = :m",
        m=first,
    )
    hold_days = timedelta(days=settings.reservation_hold_days)
    assert handed["now"] + hold_days - timedelta(minutes=5) < handed["ready_until"]
    assert handed["ready_until"] <= handed["now"] + hold_days
    assert copy_status(engine, queued_for["barcode"]) == "on_hold"
    assert queue_of(engine, nobody_waits["work"]) == [(nobody_waits["holder"], "expired")]
    assert copy_status(engine, nobody_waits["barcode"]) == "available"
    assert queue_of(engine, still_held["work"])[0] == (still_held["holder"], "ready")
    # the expired reservation keeps the record of what it held and until when
    assert reservation(engine, queued_for["reservation_id"])["barcode"] == queued_for["barcode"]
    # the change went through the ledger under the deterministic key
    key = reservation_expiry_key(queued_for["reservation_id"], deadline)
    [entry] = ledger(engine, key)
    assert entry["status"] == "succeeded"
    assert (entry["result"]["held_for"], entry["result"]["released_barcode"]) == (
        first,
        queued_for["barcode"],
    )
    # the copy now goes to the next member only
    late = run(
        runner,
        CheckoutCopy(key=unique("out"), member=queued_for["holder"], barcode=queued_for["barcode"]),
    )
    assert (late.status, late.reason) == ("rejected", "copy_held_for_another_member")
    collected = run(
        runner, CheckoutCopy(key=unique("out"), member=first, barcode=queued_for["barcode"])
    )
    assert collected.result["reservation_fulfilled"] is True


def test_running_the_expiry_twice_changes_nothing_more(runner, engine, sweep):
    held = held_work(runner, waiting=1)
    deadline = lapse_hold(engine, held["reservation_id"])

    first = sweep(EXPIRE_READY_RESERVATIONS_SWEEP)
    state = queue_of(engine, held["work"])
    second = sweep(EXPIRE_READY_RESERVATIONS_SWEEP)

    assert first.figures["applied"] >= 1
    assert second.figures["applied"] == 0
    assert (
        queue_of(engine, held["work"])
        == state
        == [
            (held["holder"], "expired"),
            (held["queue"][0], "ready"),
        ]
    )
    assert len(ledger(engine, reservation_expiry_key(held["reservation_id"], deadline))) == 1


def test_two_concurrent_expiry_runs_expire_each_hold_once(runner, engine, sweep):
    works = [held_work(runner, waiting=2) for _ in range(5)]
    for held in works:
        lapse_hold(engine, held["reservation_id"])

    reports = at_once(
        lambda: sweep(EXPIRE_READY_RESERVATIONS_SWEEP, maintenance_batch_size=2),
        lambda: sweep(EXPIRE_READY_RESERVATIONS_SWEEP, maintenance_batch_size=2),
    )

    ran = [r for r in reports if r.skipped is None]
    assert sum(r.figures["applied"] for r in ran) >= len(works)
    assert all(r.skipped == SKIPPED_LOCKED for r in reports if r.skipped)
    for held in works:
        first, second = held["queue"]
        assert queue_of(engine, held["work"]) == [
            (held["holder"], "expired"),
            (first, "ready"),  # handed on once: the second member still waits
            (second, "queued"),
        ]


def test_the_same_expiry_delivered_twice_at_once_applies_once(runner, engine):
    """Without the sweep's advisory lock (two maintenance processes, a manual run): the
    ledger key still lets only one delivery apply."""
    held = held_work(runner, waiting=2)
    command = expiry_command(held["reservation_id"], lapse_hold(engine, held["reservation_id"]))

    outcomes = at_once(lambda: run(runner, command), lambda: run(runner, command))

    assert sorted(o.replayed for o in outcomes) == [False, True]
    assert outcomes[0].result == outcomes[1].result
    assert [status for _, status in queue_of(engine, held["work"])] == [
        "expired",
        "ready",
        "queued",
    ]


def test_a_run_skips_while_another_holds_the_expiry_lock(runner, engine, sweep):
    held = held_work(runner, waiting=1)
    lapse_hold(engine, held["reservation_id"])

    with advisory_lock(engine, EXPIRE_READY_RESERVATIONS_SWEEP.task) as acquired:
        assert acquired
        skipped = sweep(EXPIRE_READY_RESERVATIONS_SWEEP)

    assert skipped.skipped == SKIPPED_LOCKED
    assert queue_of(engine, held["work"])[0] == (held["holder"], "ready")


@pytest.mark.parametrize(
    ("meanwhile", "status"),
    [
        (
            lambda runner, held: CheckoutCopy(
                key=unique("out"), member=held["holder"], barcode=held["barcode"]
            ),
            "fulfilled",
        ),
        (
            lambda runner, held: CancelReservation(
                key=unique("cancel"), member=held["holder"], work=held["work"]
            ),
            "cancelled",
        ),
    ],
    ids=["collected", "cancelled"],
)
def test_a_hold_collected_or_cancelled_after_it_was_found_is_not_expired(
    runner, engine, meanwhile, status
):
    held = held_work(runner, waiting=1)
    command = expiry_command(held["reservation_id"], lapse_hold(engine, held["reservation_id"]))
    assert run(runner, meanwhile(runner, held)).status == "succeeded"
    before = (queue_of(engine, held["work"]), copy_status(engine, held["barcode"]))

    outcome = run(runner, command)

    assert (outcome.status, outcome.reason) == ("rejected", "reservation_not_ready")
    assert outcome.details == {"reservation_id": held["reservation_id"], "status": status}
    assert (queue_of(engine, held["work"]), copy_status(engine, held["barcode"])) == before


def test_an_extended_hold_is_not_expired_until_its_new_deadline_passes(runner, engine, sweep):
    held = held_work(runner, waiting=1)
    old_deadline = lapse_hold(engine, held["reservation_id"])
    found = expiry_command(held["reservation_id"], old_deadline)  # what the sweep read
    set_hold_deadline(engine, held["reservation_id"], "2 days")  # extended at the desk

    refused = run(runner, found)

    assert (refused.status, refused.reason) == ("rejected", "hold_not_expired")
    assert queue_of(engine, held["work"])[0] == (held["holder"], "ready")
    # the new deadline passes: a key of its own, so the stored refusal is not replayed
    new_deadline = lapse_hold(engine, held["reservation_id"], ago="1 minute")
    sweep(EXPIRE_READY_RESERVATIONS_SWEEP)
    assert queue_of(engine, held["work"]) == [
        (held["holder"], "expired"),
        (held["queue"][0], "ready"),
    ]
    [entry] = ledger(engine, reservation_expiry_key(held["reservation_id"], new_deadline))
    assert entry["status"] == "succeeded"
    assert ledger(engine, found.key)[0]["reason"] == "hold_not_expired"


# -- the expiry racing the holder at the desk (row locks, not luck) -------------------------


def gate_on_copy(engine, barcode: str):
    """A transaction holding the copy's row lock; returns (connection, its backend pid)."""
    connection = engine.connect()
    connection.execute(text("SELECT 1 FROM copies WHERE barcode = :b FOR UPDATE"), {"b": barcode})
    pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return connection, pid


def race(engine, runner, barcode: str, first, second) -> tuple[Any, Any]:
    """Queue `first`, then `second`, behind a lock on the copy; release; both outcomes."""
    gate, _ = gate_on_copy(engine, barcode)
    try:
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(run, runner, first)
            wait_until_sessions_wait(engine, 1)
            two = pool.submit(run, runner, second)
            wait_until_sessions_wait(engine, 2)
            gate.rollback()
            return one.result(timeout=30), two.result(timeout=30)
    finally:
        gate.close()


def test_the_holder_collecting_while_the_expiry_waits_wins(runner, engine):
    held = held_work(runner, waiting=1)
    expiry = expiry_command(held["reservation_id"], lapse_hold(engine, held["reservation_id"]))
    collect = CheckoutCopy(key=unique("out"), member=held["holder"], barcode=held["barcode"])

    collected, expired = race(engine, runner, held["barcode"], collect, expiry)

    assert collected.status == "succeeded" and collected.result["reservation_fulfilled"]
    assert (expired.status, expired.reason) == ("rejected", "reservation_not_ready")
    assert queue_of(engine, held["work"]) == [
        (held["holder"], "fulfilled"),
        (held["queue"][0], "queued"),
    ]
    assert [loan["member"] for loan in loans_of_copy(engine, held["barcode"])] == [held["holder"]]


def test_the_expiry_applied_first_hands_the_copy_on_and_the_late_holder_is_refused(runner, engine):
    held = held_work(runner, waiting=1)
    expiry = expiry_command(held["reservation_id"], lapse_hold(engine, held["reservation_id"]))
    collect = CheckoutCopy(key=unique("out"), member=held["holder"], barcode=held["barcode"])

    expired, refused = race(engine, runner, held["barcode"], expiry, collect)

    assert expired.status == "succeeded" and expired.result["held_for"] == held["queue"][0]
    assert (refused.status, refused.reason) == ("rejected", "copy_held_for_another_member")
    assert queue_of(engine, held["work"]) == [
        (held["holder"], "expired"),
        (held["queue"][0], "ready"),
    ]
    assert loans_of_copy(engine, held["barcode"]) == []


# -- marking loans overdue ----------------------------------------------------------------


def test_loans_past_due_are_marked_overdue_and_can_no_longer_be_renewed(runner, engine, sweep):
    late = [lent_copy(runner, engine) for _ in range(3)]
    current = lent_copy(runner, engine, days_overdue=-3)
    brought_back = lent_copy(runner, engine)
    run(runner, ReturnCopy(key=unique("ret"), barcode=brought_back["barcode"]))

    report = sweep(MARK_OVERDUE_LOANS_SWEEP)

    assert report.skipped is None and report.figures["applied"] >= 3
    for loan in late:
        row = loan_row(engine, loan["loan_id"])
        assert row["overdue_at"] is not None and row["overdue_at"] > row["due_at"]
        [entry] = ledger(engine, overdue_key(loan["loan_id"], row["due_at"].date()))
        assert entry["status"] == "succeeded"
        assert entry["result"]["member"] == loan["member"]
    assert loan_row(engine, current["loan_id"])["overdue_at"] is None
    assert loan_row(engine, brought_back["loan_id"])["overdue_at"] is None

    renewal = run(
        runner, RenewLoan(key=unique("renew"), member=late[0]["member"], barcode=late[0]["barcode"])
    )
    assert (renewal.status, renewal.reason) == ("rejected", "loan_overdue")
    returned = run(runner, ReturnCopy(key=unique("ret"), barcode=late[0]["barcode"]))
    assert returned.status == "succeeded" and returned.result["overdue"] is True
    after = loan_row(engine, late[0]["loan_id"])
    assert after["returned_at"] is not None and after["overdue_at"] is not None  # history


def test_marking_twice_changes_nothing_more(runner, engine, sweep):
    loan = lent_copy(runner, engine)

    first = sweep(MARK_OVERDUE_LOANS_SWEEP)
    marked = loan_row(engine, loan["loan_id"])
    second = sweep(MARK_OVERDUE_LOANS_SWEEP)

    assert first.figures["applied"] >= 1
    assert second.figures["applied"] == 0
    assert loan_row(engine, loan["loan_id"]) == marked
    assert marked["version"] == 2  # checkout, one mark


def test_two_concurrent_marking_runs_mark_each_loan_once(runner, engine, sweep):
    loans = [lent_copy(runner, engine) for _ in range(6)]

    reports = at_once(
        lambda: sweep(MARK_OVERDUE_LOANS_SWEEP, maintenance_batch_size=2),
        lambda: sweep(MARK_OVERDUE_LOANS_SWEEP, maintenance_batch_size=2),
    )

    ran = [r for r in reports if r.skipped is None]
    assert sum(r.figures["applied"] for r in ran) >= len(loans)
    assert all(r.skipped == SKIPPED_LOCKED for r in reports if r.skipped)
    for loan in loans:
        row = loan_row(engine, loan["loan_id"])
        assert row["overdue_at"] is not None and row["version"] == 2
        assert len(ledger(engine, overdue_key(loan["loan_id"], row["due_at"].date()))) == 1


def test_the_same_mark_delivered_twice_at_once_applies_once(runner, engine):
    loan = lent_copy(runner, engine)
    command = overdue_command(loan["loan_id"], loan["due_at"])

    outcomes = at_once(lambda: run(runner, command), lambda: run(runner, command))

    assert sorted(o.replayed for o in outcomes) == [False, True]
    assert loan_row(engine, loan["loan_id"])["version"] == 2


def test_a_run_skips_while_another_holds_the_marking_lock(runner, engine, sweep):
    loan = lent_copy(runner, engine)

    with advisory_lock(engine, MARK_OVERDUE_LOANS_SWEEP.task) as acquired:
        assert acquired
        skipped = sweep(MARK_OVERDUE_LOANS_SWEEP)

    assert skipped.skipped == SKIPPED_LOCKED
    assert loan_row(engine, loan["loan_id"])["overdue_at"] is None


def test_a_loan_renewed_or_returned_after_it_was_found_is_not_marked(runner, engine, sweep):
    renewed, returned = lent_copy(runner, engine), lent_copy(runner, engine)
    found = [overdue_command(loan["loan_id"], loan["due_at"]) for loan in (renewed, returned)]
    assert (
        run(
            runner,
            RenewLoan(key=unique("renew"), member=renewed["member"], barcode=renewed["barcode"]),
        ).status
        == "succeeded"
    )
    run(runner, ReturnCopy(key=unique("ret"), barcode=returned["barcode"]))

    outcomes = [run(runner, command) for command in found]

    assert [(o.status, o.reason) for o in outcomes] == [("rejected", "loan_not_overdue")] * 2
    assert loan_row(engine, renewed["loan_id"])["overdue_at"] is None
    assert loan_row(engine, returned["loan_id"])["overdue_at"] is None
    # the renewed loan's new due date is a new key: when it passes, it is marked
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE loans SET due_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": renewed["loan_id"]},
        )
    sweep(MARK_OVERDUE_LOANS_SWEEP)
    assert loan_row(engine, renewed["loan_id"])["overdue_at"] is not None


def test_a_refused_mark_does_not_hold_up_the_rest_of_the_sweep(runner, engine, sweep):
    """Keyset cursor: a row that stays due (its key was already used with another
    payload) is passed over, and later rows still get their turn."""
    drain(sweep)
    stuck, *others = [lent_copy(runner, engine, days_overdue=9 - i) for i in range(4)]
    key = overdue_key(stuck["loan_id"], stuck["due_at"].date())
    earlier = MarkLoanOverdue(
        key=key, loan_id=stuck["loan_id"], due_date=stuck["due_at"].date() - timedelta(days=1)
    )
    assert run(runner, earlier).reason == "loan_not_overdue"

    try:
        report = sweep(MARK_OVERDUE_LOANS_SWEEP, maintenance_batch_size=1)

        assert report.figures["applied"] == 3 and report.figures["rejected"] >= 1
        assert report.figures["more"] is False
        assert ledger(engine, key)[0]["reason"] == "loan_not_overdue"  # the first outcome
        assert loan_row(engine, stuck["loan_id"])["overdue_at"] is None
        assert all(loan_row(engine, loan["loan_id"])["overdue_at"] for loan in others)
    finally:  # the stuck loan would stay due (and refused) in every later run
        run(runner, ReturnCopy(key=unique("ret"), barcode=stuck["barcode"]))


def test_a_run_stops_at_the_batch_limit_and_the_next_run_goes_on(runner, engine, sweep):
    drain(sweep)
    loans = [lent_copy(runner, engine) for _ in range(5)]
    limited = {"maintenance_batch_size": 2, "maintenance_max_batches": 2}

    first = sweep(MARK_OVERDUE_LOANS_SWEEP, **limited)
    second = sweep(MARK_OVERDUE_LOANS_SWEEP, **limited)

    assert (first.figures["applied"], first.figures["more"]) == (4, True)
    assert (second.figures["applied"], second.figures["more"]) == (1, False)
    assert all(loan_row(engine, loan["loan_id"])["overdue_at"] for loan in loans)


# -- the database refuses inconsistent overdue marks written by hand -----------------------


@pytest.mark.parametrize(
    ("update", "constraint"),
    [
        (
            "UPDATE loans SET overdue_at = due_at - interval '1 day' WHERE id = :id",
            "ck_loans_overdue_after_due",
        ),
        (
            "UPDATE loans SET returned_at = due_at + interval '1 day', "
            "overdue_at = due_at + interval '2 days' WHERE id = :id",
            "ck_loans_overdue_before_return",
        ),
    ],
    ids=["marked-before-due", "marked-after-return"],
)
def test_the_database_refuses_an_inconsistent_overdue_mark(runner, engine, update, constraint):
    loan = lent_copy(runner, engine, days_overdue=5)

    with pytest.raises(IntegrityError) as excinfo, engine.begin() as connection:
        connection.execute(text(update), {"id": loan["loan_id"]})

    assert constraint_of(excinfo.value) == constraint
    assert loan_row(engine, loan["loan_id"])["overdue_at"] is None
