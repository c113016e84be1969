"""Library loans on real PostgreSQL through the worker's runner (in this process).

Rules and their reason codes, replays, the database refusing forbidden rows written by
hand, concurrent commands on the same rows, and optimistic locking on loans.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from producers.commands import (
    AddCopy,
    AddWork,
    CancelReservation,
    CheckoutCopy,
    Command,
    PlaceReservation,
    RegisterMember,
    RenewLoan,
    ReturnCopy,
)
from tests.support.commands import run
from tests.support.failpoints import FailpointRecords
from tests.support.ids import unique
from tests.support.library import (
    copy_status,
    loans_of_copy,
    new_member,
    new_work,
    reservations_of,
    rows,
)
from tests.support.sessions import wait_until_blocked_by, wait_until_sessions_wait
from worker.adapters import tables
from worker.adapters.errors import ErrorKind, classify, constraint_of
from worker.domain.loans import Loan
from worker.service.failpoints import Failpoints
from worker.service.runner import CommandRunner, RetryLater


def checkout(member: str, barcode: str, key: str | None = None) -> CheckoutCopy:
    return CheckoutCopy(key=key or unique("out"), member=member, barcode=barcode)


def give_back(barcode: str) -> ReturnCopy:
    return ReturnCopy(key=unique("ret"), barcode=barcode)


def renew(member: str, barcode: str) -> RenewLoan:
    return RenewLoan(key=unique("renew"), member=member, barcode=barcode)


def reserve(member: str, work: str) -> PlaceReservation:
    return PlaceReservation(key=unique("res"), member=member, work=work)


def cancel(member: str, work: str) -> CancelReservation:
    return CancelReservation(key=unique("cancel"), member=member, work=work)


def rejected(outcome: Any) -> str:
    assert outcome.status == "rejected", outcome
    return outcome.reason


def execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def runner_with(
    runner: CommandRunner, spec: str, folder: Path
) -> tuple[CommandRunner, FailpointRecords]:
    """The same runner with failpoints `spec`, their firings recorded in `folder`."""
    faulty = CommandRunner(
        runner.settings,
        runner.deliveries.engine,
        runner.session_factory,
        Failpoints(spec, folder),
    )
    return faulty, FailpointRecords(folder)


def race(
    runner: CommandRunner, engine: Engine, folder: Path, commands: list[Command], queued: int
) -> list[Any]:
    """Run `commands` (keyed `RACE-…`) on threads; the first to lock its rows holds them
    until `queued` of the others wait for those locks — so the race really happens —
    then all go on. Their outcomes, in the order of `commands`."""
    racing, records = runner_with(runner, "after_lock=pause@RACE-", folder)
    with ThreadPoolExecutor(len(commands)) as pool, records.released_at_exit():
        futures = [pool.submit(run, racing, command) for command in commands]
        records.wait_for("RACE-")
        wait_until_sessions_wait(engine, queued)
        records.release_all()
        return [future.result(timeout=30) for future in futures]


# -- lending ------------------------------------------------------------------------------


def test_checkout_lends_the_copy_for_one_loan_period(runner, engine, settings):
    member = new_member(runner)
    _, [barcode] = new_work(runner)

    outcome = run(runner, checkout(member, barcode))

    assert outcome.status == "succeeded"
    assert outcome.result["member"] == member and outcome.result["barcode"] == barcode
    [loan] = loans_of_copy(engine, barcode)
    assert loan["due_at"] - loan["checked_out_at"] == timedelta(days=settings.loan_period_days)
    assert datetime.fromisoformat(outcome.result["due_at"]) == loan["due_at"]
    assert copy_status(engine, barcode) == "on_loan"


def test_loan_limit_counts_active_loans_only(runner, engine):
    member = new_member(runner, loan_limit=1)
    _, [first, second] = new_work(runner, copies=2)
    run(runner, checkout(member, first))

    refused = run(runner, checkout(member, second))
    run(runner, give_back(first))
    lent = run(runner, checkout(member, second))

    assert rejected(refused) == "loan_limit_reached"
    assert refused.details == {"member": member, "active_loans": 1, "loan_limit": 1}
    assert lent.status == "succeeded"
    assert copy_status(engine, first) == "available"


def test_a_suspended_member_can_neither_borrow_nor_reserve(runner, engine):
    member = new_member(runner)
    work, [barcode] = new_work(runner)
    suspend = RegisterMember(key=unique("reg"), member=member, name="Reader", status="suspended")
    assert run(runner, suspend).result["changed"] is True

    assert rejected(run(runner, checkout(member, barcode))) == "member_not_active"
    assert rejected(run(runner, reserve(member, work))) == "member_not_active"
    assert loans_of_copy(engine, barcode) == [] and reservations_of(engine, work) == []

    reinstate = RegisterMember(key=unique("reg"), member=member, name="Reader")
    run(runner, reinstate)
    assert run(runner, checkout(member, barcode)).status == "succeeded"


def test_a_deleted_copy_is_neither_lent_nor_held(runner, engine):
    member = new_member(runner)
    work, [barcode] = new_work(runner)
    execute(engine, "UPDATE copies SET deleted_at = now() WHERE barcode = :b", b=barcode)

    assert rejected(run(runner, checkout(member, barcode))) == "copy_deleted"
    reservation = run(runner, reserve(member, work))
    assert reservation.result["status"] == "queued"  # the withdrawn copy is not held
    assert loans_of_copy(engine, barcode) == []


def test_a_deleted_member_is_not_found_and_the_number_can_be_issued_again(runner, engine):
    member = new_member(runner)
    _, [barcode] = new_work(runner)
    execute(engine, "UPDATE members SET deleted_at = now() WHERE member_number = :m", m=member)

    assert rejected(run(runner, checkout(member, barcode))) == "member_not_found"
    again = run(runner, RegisterMember(key=unique("reg"), member=member, name="New Reader"))
    assert again.result["created"] is True
    assert len(rows(engine, "SELECT id FROM members WHERE member_number = :m", m=member)) == 2
    assert run(runner, checkout(member, barcode)).status == "succeeded"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda m, w, b: checkout("M-NOBODY-" + unique("X"), b), "member_not_found"),
        (lambda m, w, b: checkout(m, unique("NOCOPY")), "copy_not_found"),
        (lambda m, w, b: give_back(unique("NOCOPY")), "copy_not_found"),
        (lambda m, w, b: give_back(b), "loan_not_found"),
        (lambda m, w, b: renew(m, b), "loan_not_found"),
        (lambda m, w, b: reserve(m, unique("NOWORK")), "work_not_found"),
        (lambda m, w, b: cancel(m, w), "reservation_not_found"),
        (lambda m, w, b: AddCopy(key=unique("copy"), work=w, barcode=b), "barcode_in_use"),
        (
            lambda m, w, b: AddCopy(key=unique("copy"), work=unique("NOWORK"), barcode=b),
            "work_not_found",
        ),
    ],
    ids=[
        "checkout-by-unknown-member",
        "checkout-of-unknown-copy",
        "return-of-unknown-copy",
        "return-of-a-copy-on-the-shelf",
        "renew-without-a-loan",
        "reserve-unknown-work",
        "cancel-without-a-reservation",
        "add-copy-with-a-taken-barcode",
        "add-copy-to-unknown-work",
    ],
)
def test_commands_naming_what_does_not_exist_are_rejected(runner, engine, make, reason):
    member = new_member(runner)
    work, [barcode] = new_work(runner)

    outcome = run(runner, make(member, work, barcode))

    assert rejected(outcome) == reason
    assert copy_status(engine, barcode) == "available"


# -- renewals -----------------------------------------------------------------------------


def test_renewals_are_limited(runner, engine, settings):
    member = new_member(runner)
    _, [barcode] = new_work(runner)
    run(runner, checkout(member, barcode))

    renewed = [run(runner, renew(member, barcode)) for _ in range(settings.loan_renewal_limit)]
    refused = run(runner, renew(member, barcode))

    assert [o.result["renewals"] for o in renewed] == list(range(1, len(renewed) + 1))
    assert rejected(refused) == "renewal_limit_reached"
    [loan] = loans_of_copy(engine, barcode)
    periods = settings.loan_renewal_limit + 1
    assert loan["due_at"] - loan["checked_out_at"] == periods * settings.loan_policy().loan_period


def test_renewal_is_refused_while_another_member_waits(runner, engine):
    borrower, waiting = new_member(runner), new_member(runner)
    work, [barcode] = new_work(runner)
    run(runner, checkout(borrower, barcode))
    run(runner, reserve(waiting, work))

    refused = run(runner, renew(borrower, barcode))
    run(runner, cancel(waiting, work))
    renewed = run(runner, renew(borrower, barcode))

    assert rejected(refused) == "work_has_waiting_reservations"
    assert refused.details == {"waiting": 1}
    assert renewed.result["renewals"] == 1
    assert rejected(run(runner, renew(waiting, barcode))) == "loan_not_found"  # not theirs


# -- reservations and the hold shelf ------------------------------------------------------


def test_return_hands_the_copy_to_the_first_in_the_queue(runner, engine, settings):
    borrower, first, second = (new_member(runner) for _ in range(3))
    work, [barcode] = new_work(runner)
    run(runner, checkout(borrower, barcode))
    assert run(runner, reserve(first, work)).result["position"] == 1
    assert run(runner, reserve(second, work)).result["position"] == 2

    returned = run(runner, give_back(barcode))

    assert returned.result["held_for"] == first
    assert returned.result["copy_status"] == "on_hold"
    ready_until = datetime.fromisoformat(returned.result["ready_until"])
    returned_at = datetime.fromisoformat(returned.result["returned_at"])
    assert ready_until - returned_at == timedelta(days=settings.reservation_hold_days)
    queue = reservations_of(engine, work)
    assert [(r["member"], r["status"], r["barcode"]) for r in queue] == [
        (first, "ready", barcode),
        (second, "queued", None),
    ]
    assert queue[0]["ready_until"] == ready_until

    assert rejected(run(runner, checkout(second, barcode))) == "copy_held_for_another_member"
    collected = run(runner, checkout(first, barcode))
    assert collected.result["reservation_fulfilled"] is True
    assert [r["status"] for r in reservations_of(engine, work)] == ["fulfilled", "queued"]
    assert [loan["member"] for loan in loans_of_copy(engine, barcode)] == [borrower, first]


def test_cancelling_a_ready_reservation_passes_the_copy_on(runner, engine):
    borrower, first, second = (new_member(runner) for _ in range(3))
    work, [barcode] = new_work(runner)
    run(runner, checkout(borrower, barcode))
    run(runner, reserve(first, work))
    run(runner, reserve(second, work))
    run(runner, give_back(barcode))

    cancelled = run(runner, cancel(first, work))

    assert cancelled.result["released_barcode"] == barcode
    assert cancelled.result["held_for"] == second
    assert [(r["member"], r["status"]) for r in reservations_of(engine, work)] == [
        (first, "cancelled"),
        (second, "ready"),
    ]
    assert copy_status(engine, barcode) == "on_hold"


def test_reserving_holds_a_copy_on_the_shelf_and_a_new_copy_serves_the_queue(runner, engine):
    early, late = new_member(runner), new_member(runner)
    work, [barcode] = new_work(runner)

    held = run(runner, reserve(early, work))
    queued = run(runner, reserve(late, work))
    twice = run(runner, reserve(late, work))
    new_barcode = unique("C")
    added = run(runner, AddCopy(key=unique("copy"), work=work, barcode=new_barcode))

    assert (held.result["status"], held.result["barcode"]) == ("ready", barcode)
    assert (queued.result["status"], queued.result["position"]) == ("queued", 1)
    assert rejected(twice) == "reservation_exists"
    assert (added.result["status"], added.result["held_for"]) == ("on_hold", late)
    assert [(r["member"], r["barcode"]) for r in reservations_of(engine, work)] == [
        (early, barcode),
        (late, new_barcode),
    ]


# -- duplicates -----------------------------------------------------------------------------


def test_every_loan_command_replays_its_stored_outcome(runner, engine):
    borrower, other = unique("M"), unique("M")
    work, barcode = unique("W"), unique("C")
    commands: list[Command] = [
        RegisterMember(key=unique("reg"), member=borrower, name="Ada"),
        RegisterMember(key=unique("reg"), member=other, name="Bob"),
        AddWork(key=unique("work"), work=work, title="Dune", authors=("Frank Herbert",)),
        AddCopy(key=unique("copy"), work=work, barcode=barcode),
        checkout(borrower, barcode),
        checkout(other, barcode),  # a rejection is an outcome too
        renew(borrower, barcode),
        reserve(other, work),
        cancel(other, work),
        give_back(barcode),
    ]

    for command in commands:
        first, second = run(runner, command), run(runner, command)
        assert not first.replayed and second.replayed, command.type
        assert (second.status, second.result, second.reason, second.message) == (
            first.status,
            first.result,
            first.reason,
            first.message,
        ), command.type

    [loan] = loans_of_copy(engine, barcode)
    assert (loan["member"], loan["renewals"], loan["returned_at"] is not None) == (
        borrower,
        1,
        True,
    )
    assert [r["status"] for r in reservations_of(engine, work)] == ["cancelled"]
    assert copy_status(engine, barcode) == "available"


def test_a_reused_key_with_another_payload_changes_nothing(runner, engine):
    first, second = new_member(runner), new_member(runner)
    _, [barcode] = new_work(runner)
    key = unique("out")
    run(runner, checkout(first, barcode, key=key))

    reused = run(runner, checkout(second, barcode, key=key))

    assert rejected(reused) == "idempotency_key_reused"
    assert [loan["member"] for loan in loans_of_copy(engine, barcode)] == [first]


# -- the database refuses forbidden rows written by hand ------------------------------------


def _ids(engine: Engine, members: list[str], work: str, barcodes: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name, number in zip(("a", "b"), members, strict=True):
        ids[name] = rows(engine, "SELECT id FROM members WHERE member_number = :n", n=number)[0][
            "id"
        ]
    ids["work"] = rows(engine, "SELECT id FROM works WHERE work_code = :w", w=work)[0]["id"]
    for name, barcode in zip(("c", "d"), barcodes, strict=True):
        ids[name] = rows(engine, "SELECT id FROM copies WHERE barcode = :b", b=barcode)[0]["id"]
    return ids


LOAN = (
    "INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at, renewals) "
    "VALUES (:copy, :member, :key, now(), now() + interval '21 days', :renewals)"
)
RESERVATION = (
    "INSERT INTO reservations (work_id, member_id, status, queued_at, copy_id, ready_until) "
    "VALUES (:work, :member, :status, now(), :copy, :until)"
)
QUEUED = {"status": "queued", "copy": None, "until": None}
READY = {"status": "ready", "until": datetime(2030, 1, 1)}

FORBIDDEN = {
    "second open reservation of a work by one member": (
        [(RESERVATION, {"member": "a", **QUEUED}), (RESERVATION, {"member": "a", **QUEUED})],
        "uq_reservations_work_id_member_id_open",
    ),
    "one copy held for two reservations": (
        [
            (RESERVATION, {"member": "a", "copy": "c", **READY}),
            (RESERVATION, {"member": "b", "copy": "c", **READY}),
        ],
        "uq_reservations_copy_id_ready",
    ),
    "a ready reservation holding no copy": (
        [(RESERVATION, {"member": "a", **READY, "copy": None})],
        "ck_reservations_ready_holds_a_copy",
    ),
    "a queued reservation holding a copy": (
        [(RESERVATION, {"member": "a", **QUEUED, "copy": "c"})],
        "ck_reservations_queued_holds_nothing",
    ),
    "an unknown reservation status": (
        [(RESERVATION, {"member": "a", **QUEUED, "status": "lost"})],
        "ck_reservations_status_allowed",
    ),
    "negative renewals": (
        [(LOAN, {"copy": "d", "member": "a", "renewals": -1})],
        "ck_loans_renewals_not_negative",
    ),
    "a loan due before it began": (
        [
            (
                "INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at) "
                "VALUES (:copy, :member, :key, now(), now() - interval '1 day')",
                {"copy": "d", "member": "a"},
            )
        ],
        "ck_loans_due_after_checkout",
    ),
    "an unknown copy status": (
        [("UPDATE copies SET status = 'lost' WHERE id = :copy", {"copy": "d"})],
        "ck_copies_status_allowed",
    ),
    "an unknown member status": (
        [("UPDATE members SET status = 'banned' WHERE id = :member", {"member": "a"})],
        "ck_members_status_allowed",
    ),
    "a negative loan limit": (
        [("UPDATE members SET loan_limit = -1 WHERE id = :member", {"member": "a"})],
        "ck_members_loan_limit_not_negative",
    ),
    "two live members with one number": (
        [
            (
                "INSERT INTO members (member_number, name, status, loan_limit) "
                "SELECT member_number, 'Twin', 'active', 1 FROM members WHERE id = :member",
                {"member": "a"},
            )
        ],
        "uq_members_member_number_live",
    ),
    "two copies with one barcode": (
        [
            (
                "INSERT INTO copies (work_id, barcode, status) "
                "SELECT work_id, barcode, 'available' FROM copies WHERE id = :copy",
                {"copy": "c"},
            )
        ],
        "uq_copies_barcode",
    ),
}


@pytest.mark.parametrize("case", FORBIDDEN, ids=list(FORBIDDEN))
def test_the_database_refuses_forbidden_rows(runner, engine, case):
    members = [new_member(runner), new_member(runner)]
    work, barcodes = new_work(runner, copies=2)
    ids = _ids(engine, members, work, barcodes)
    statements, constraint = FORBIDDEN[case]

    with engine.connect() as connection, connection.begin():
        *allowed, (refused_sql, refused_params) = statements
        for sql, params in allowed:
            connection.execute(text(sql), _bind(params, ids))
        with pytest.raises(IntegrityError) as excinfo:
            connection.execute(text(refused_sql), _bind(refused_params, ids))

    assert constraint_of(excinfo.value) == constraint
    assert constraint in str(excinfo.value)


def _bind(params: dict[str, Any], ids: dict[str, int]) -> dict[str, Any]:
    bound = {
        key: ids.get(value, value) if isinstance(value, str) else value
        for key, value in params.items()
    }
    return {"key": unique("hand"), "work": ids["work"], **bound}


def test_a_second_active_loan_by_hand_is_refused_and_history_is_kept(runner, engine):
    first, second = new_member(runner), new_member(runner)
    work, [barcode, spare] = new_work(runner, copies=2)
    ids = _ids(engine, [first, second], work, [barcode, spare])
    run(runner, checkout(first, barcode))

    with pytest.raises(IntegrityError) as excinfo, engine.begin() as connection:
        connection.execute(
            text(LOAN), {"copy": ids["c"], "member": ids["b"], "key": unique("h"), "renewals": 0}
        )
    assert constraint_of(excinfo.value) == "uq_loans_copy_id_active"
    assert 'unique constraint "uq_loans_copy_id_active"' in str(excinfo.value)

    run(runner, give_back(barcode))
    again = run(runner, checkout(second, barcode))

    assert again.status == "succeeded"
    history = loans_of_copy(engine, barcode)
    assert [(loan["member"], loan["returned_at"] is None) for loan in history] == [
        (first, False),
        (second, True),
    ]


# -- concurrency: threads on the same rows --------------------------------------------------


def test_concurrent_checkouts_of_one_copy_make_exactly_one_loan(runner, engine, tmp_path):
    members = [new_member(runner) for _ in range(4)]
    _, [barcode] = new_work(runner)
    commands = [checkout(m, barcode, key=unique("race")) for m in members]

    outcomes = race(runner, engine, tmp_path, commands, queued=3)  # behind the copy's lock

    assert sum(o.status == "succeeded" for o in outcomes) == 1
    assert (
        sorted(o.reason for o in outcomes if o.status == "rejected") == ["copy_not_available"] * 3
    )
    winner = next(o.result["member"] for o in outcomes if o.status == "succeeded")
    assert [loan["member"] for loan in loans_of_copy(engine, barcode)] == [winner]


def test_one_members_concurrent_checkouts_respect_the_loan_limit(runner, engine, tmp_path):
    member = new_member(runner, loan_limit=1)
    _, barcodes = new_work(runner, copies=2)
    commands = [checkout(member, b, key=unique("race")) for b in barcodes]

    outcomes = race(runner, engine, tmp_path, commands, queued=1)  # behind the member's lock

    assert sorted(o.status for o in outcomes) == ["rejected", "succeeded"]
    assert {o.reason for o in outcomes if o.status == "rejected"} == {"loan_limit_reached"}
    assert sum(len(loans_of_copy(engine, b)) for b in barcodes) == 1


def test_concurrent_returns_serve_the_queue_in_order_one_copy_each(runner, engine, tmp_path):
    borrowers = [new_member(runner), new_member(runner)]
    first, second = new_member(runner), new_member(runner)
    work, barcodes = new_work(runner, copies=2)
    for member, barcode in zip(borrowers, barcodes, strict=True):
        run(runner, checkout(member, barcode))
    run(runner, reserve(first, work))
    run(runner, reserve(second, work))
    returns = [ReturnCopy(key=unique("race"), barcode=b) for b in barcodes]

    outcomes = race(runner, engine, tmp_path, returns, queued=1)  # behind the work's lock

    assert sorted(o.result["held_for"] for o in outcomes) == sorted([first, second])
    queue = reservations_of(engine, work)
    assert {r["status"] for r in queue} == {"ready"}
    assert sorted(r["barcode"] for r in queue) == sorted(barcodes)


def test_a_reservation_racing_a_return_never_leaves_the_copy_on_the_shelf(runner, engine, tmp_path):
    """The return has found nobody waiting and is about to shelve the copy when the
    reservation arrives. Without the work's row lock the reservation would see the copy
    still on loan and queue: a waiting member next to an available copy."""
    borrower, waiting = new_member(runner), new_member(runner)
    work, [barcode] = new_work(runner)
    run(runner, checkout(borrower, barcode))
    committing, records = runner_with(runner, "before_commit=pause@RACE-", tmp_path)

    with ThreadPoolExecutor(2) as pool, records.released_at_exit():
        returned = pool.submit(run, committing, ReturnCopy(key=unique("race"), barcode=barcode))
        records.wait_for("RACE-")  # decided (nobody waiting), not yet committed
        reserved = pool.submit(run, runner, reserve(waiting, work))
        wait_until_sessions_wait(engine, 1)  # the reservation waits for the work's lock
        records.release_all()
        assert returned.result(timeout=30).result["held_for"] is None  # nobody was waiting
        assert reserved.result(timeout=30).result["status"] == "ready"

    assert [(r["member"], r["status"]) for r in reservations_of(engine, work)] == [
        (waiting, "ready")
    ]
    assert copy_status(engine, barcode) == "on_hold"


# -- optimistic locking on loans ------------------------------------------------------------


def _active_loan(session, barcode: str) -> Loan:
    query = (
        select(Loan)
        .join(tables.copies, tables.copies.c.id == tables.loans.c.copy_id)
        .where(tables.copies.c.barcode == barcode, tables.loans.c.returned_at.is_(None))
    )
    return session.scalars(query).one()


def test_two_sessions_updating_one_loan_from_the_same_read(
    runner, engine, session_factory, settings
):
    member = new_member(runner)
    _, [barcode] = new_work(runner)
    run(runner, checkout(member, barcode))
    policy = settings.loan_policy()

    with session_factory() as first, session_factory() as second:
        mine, theirs = _active_loan(first, barcode), _active_loan(second, barcode)
        assert mine.version == theirs.version == 1  # the same read
        mine.renew(datetime.now(mine.due_at.tzinfo), policy, others_waiting=0)
        first.commit()
        theirs.renew(datetime.now(theirs.due_at.tzinfo), policy, others_waiting=0)
        with pytest.raises(StaleDataError) as excinfo:
            second.flush()

    assert classify(excinfo.value) is ErrorKind.TRANSIENT
    [loan] = loans_of_copy(engine, barcode)
    assert (loan["renewals"], loan["version"]) == (1, 2)


def test_a_renewal_from_a_stale_read_is_retried_and_applied_once(
    runner, engine, session_factory, settings
):
    member = new_member(runner)
    _, [barcode] = new_work(runner)
    run(runner, checkout(member, barcode))
    command = renew(member, barcode)

    with session_factory() as other, ThreadPoolExecutor(1) as pool:
        loan = _active_loan(other, barcode)
        loan.renew(datetime.now(loan.due_at.tzinfo), settings.loan_policy(), others_waiting=0)
        other.flush()  # version 2 written, not committed: the worker still reads version 1
        pid = other.execute(select(func.pg_backend_pid())).scalar_one()
        attempt = pool.submit(runner.run, command.message(), command.type)
        wait_until_blocked_by(engine, pid)  # the worker read version 1 and waits to write
        other.commit()
        first_attempt = attempt.result(timeout=30)

    assert isinstance(first_attempt, RetryLater)
    assert "StaleDataError" in first_attempt.error
    retried = run(runner, command)
    assert (retried.status, retried.result["renewals"]) == ("succeeded", 2)
    [row] = loans_of_copy(engine, barcode)
    assert (row["renewals"], row["version"]) == (2, 3)
    ledger = rows(
        engine, "SELECT attempts FROM command_ledger WHERE idempotency_key = :k", k=command.key
    )
    assert ledger == [{"attempts": 2}]
