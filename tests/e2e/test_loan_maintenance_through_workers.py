"""Loan maintenance through real processes: beat schedules the loan sweeps and the
maintenance worker runs them; the sweep commands also travel as ordinary tasks."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import text

from producers.commands import CheckoutCopy, PlaceReservation
from tests.support.cli import orderq
from tests.support.commands import run
from tests.support.ids import unique
from tests.support.library import copy_status, new_member, new_work, rows
from tests.support.outcomes import await_outcome
from tests.support.workers import WorkerProcess, running_beat
from worker.service.maintenance.loans import expiry_command, overdue_command

pytestmark = pytest.mark.e2e


def lapsed_hold(runner, engine) -> dict[str, str]:
    """A copy held for `holder` past its deadline, with `next` queued behind."""
    holder, waiting = new_member(runner), new_member(runner)
    work, [barcode] = new_work(runner)
    held = run(runner, PlaceReservation(key=unique("res"), member=holder, work=work))
    run(runner, PlaceReservation(key=unique("res"), member=waiting, work=work))
    with engine.begin() as connection:
        ready_until = connection.execute(
            text(
                "UPDATE reservations SET ready_until = now() - interval '1 hour' "
                "WHERE id = :id RETURNING ready_until"
            ),
            {"id": held.result["reservation_id"]},
        ).scalar_one()
    return {
        "work": work,
        "barcode": barcode,
        "next": waiting,
        "reservation_id": held.result["reservation_id"],
        "ready_until": ready_until,
    }


def lapsed_loan(runner, engine) -> dict[str, object]:
    member = new_member(runner)
    _, [barcode] = new_work(runner)
    out = run(runner, CheckoutCopy(key=unique("out"), member=member, barcode=barcode))
    with engine.begin() as connection:
        due_at = connection.execute(
            text(
                "UPDATE loans SET checked_out_at = now() - interval '30 days', "
                "due_at = now() - interval '2 days' WHERE id = :id RETURNING due_at"
            ),
            {"id": out.result["loan_id"]},
        ).scalar_one()
    return {"loan_id": out.result["loan_id"], "due_at": due_at}


def hold_state(engine, reservation_id: int, member: str) -> tuple[str, str]:
    [row] = rows(
        engine,
        "SELECT (SELECT status FROM reservations WHERE id = :id) AS expired, "
        "(SELECT r.status FROM reservations r JOIN members m ON m.id = r.member_id "
        " WHERE m.member_number = :m) AS next",
        id=reservation_id,
        m=member,
    )
    return row["expired"], row["next"]


def overdue_at(engine, loan_id: int):
    return rows(engine, "SELECT overdue_at FROM loans WHERE id = :id", id=loan_id)[0]["overdue_at"]


def test_beat_sends_both_loan_sweeps_and_the_maintenance_worker_applies_them(runner, engine):
    hold, loan = lapsed_hold(runner, engine), lapsed_loan(runner, engine)
    fast = {
        "ORDERQ_SCHEDULE_EXPIRE_RESERVATIONS_SECONDS": "1",
        "ORDERQ_SCHEDULE_MARK_OVERDUE_LOANS_SECONDS": "1",
    }
    maintenance = WorkerProcess(
        concurrency=1, env=fast, queues=os.environ["ORDERQ_MAINTENANCE_QUEUE"], name="maint"
    )

    # each sweep decides under a key of its own: their outcomes show beat sent both
    expire = expiry_command(hold["reservation_id"], hold["ready_until"])
    mark = overdue_command(loan["loan_id"], loan["due_at"])
    with maintenance.running(), running_beat(fast):
        expired, marked = (await_outcome(engine, c.key, timeout=60) for c in (expire, mark))

    assert (expired.status, expired.result["held_for"]) == ("succeeded", hold["next"])
    assert (marked.status, marked.result["loan_id"]) == ("succeeded", loan["loan_id"])
    assert hold_state(engine, hold["reservation_id"], hold["next"]) == ("expired", "ready")
    assert copy_status(engine, hold["barcode"]) == "on_hold"
    assert overdue_at(engine, loan["loan_id"]) is not None


def test_the_sweep_commands_also_run_as_ordinary_tasks(worker, publisher, runner, engine):
    """An operator (or another system) can publish them; duplicates replay as ever."""
    hold, loan = lapsed_hold(runner, engine), lapsed_loan(runner, engine)
    expire = expiry_command(hold["reservation_id"], hold["ready_until"])
    mark = overdue_command(loan["loan_id"], loan["due_at"])

    for command in (expire, mark, expire, mark):
        publisher.publish(command)
    expired, marked = (await_outcome(engine, c.key) for c in (expire, mark))

    assert (expired.status, expired.result["held_for"]) == ("succeeded", hold["next"])
    assert (marked.status, marked.result["loan_id"]) == ("succeeded", loan["loan_id"])
    assert hold_state(engine, hold["reservation_id"], hold["next"]) == ("expired", "ready")
    assert overdue_at(engine, loan["loan_id"]) is not None


def test_an_operator_runs_a_loan_sweep_now_from_the_command_line(runner, engine):
    loan = lapsed_loan(runner, engine)

    ran = orderq("maintenance", "run", "mark_overdue_loans", "--json")
    listed = orderq("maintenance", "list")

    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["task"] == "mark_overdue_loans" and report["applied"] >= 1
    assert overdue_at(engine, loan["loan_id"]) is not None
    assert "expire_ready_reservations" in listed.stdout and "mark_overdue_loans" in listed.stdout
    assert "ORDERQ_SCHEDULE_MARK_OVERDUE_LOANS_SECONDS" in listed.stdout
