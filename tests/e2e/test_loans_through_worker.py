"""Loans through the real path: publisher -> Redis -> celery worker processes -> PostgreSQL.

What happened to each delivery is read from the database: `command_deliveries` counts
every delivery a worker started (replays included), the ledger keeps one outcome per
key, and the business rows show each effect applied once.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select, text

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
from tests.support.ids import unique
from tests.support.library import copy_status, loans_of_copy, reservations_of, rows
from tests.support.outcomes import await_deliveries, await_outcome
from tests.support.sessions import wait_until_blocked_by
from worker.adapters import tables
from worker.domain.loans import Loan

pytestmark = pytest.mark.e2e


def publish_and_wait(publisher, engine, command: Command, status: str = "succeeded"):
    publisher.publish(command)
    outcome = await_outcome(engine, command.key)
    assert outcome.status == status, outcome
    return outcome


def library(publisher, engine, members: int) -> tuple[list[str], str, str]:
    """Members, a work and one copy of it, created through the worker."""
    numbers = [unique("M") for _ in range(members)]
    for number in numbers:
        register = RegisterMember(key=unique("reg"), member=number, name="Reader")
        publish_and_wait(publisher, engine, register)
    work, barcode = unique("W"), unique("C")
    publish_and_wait(publisher, engine, AddWork(key=unique("work"), work=work, title="Dune"))
    publish_and_wait(publisher, engine, AddCopy(key=unique("copy"), work=work, barcode=barcode))
    return numbers, work, barcode


def test_every_loan_command_delivered_twice_replays_its_outcome(worker, publisher, engine):
    borrower, other = unique("M"), unique("M")
    work, barcode = unique("W"), unique("C")
    sequence: list[tuple[Command, str]] = [
        (RegisterMember(key=unique("reg"), member=borrower, name="Ada"), "succeeded"),
        (RegisterMember(key=unique("reg"), member=other, name="Bob"), "succeeded"),
        (AddWork(key=unique("work"), work=work, title="Dune"), "succeeded"),
        (AddCopy(key=unique("copy"), work=work, barcode=barcode), "succeeded"),
        (CheckoutCopy(key=unique("out"), member=borrower, barcode=barcode), "succeeded"),
        (CheckoutCopy(key=unique("out"), member=other, barcode=barcode), "rejected"),
        (RenewLoan(key=unique("renew"), member=borrower, barcode=barcode), "succeeded"),
        (PlaceReservation(key=unique("res"), member=other, work=work), "succeeded"),
        (CancelReservation(key=unique("cancel"), member=other, work=work), "succeeded"),
        (ReturnCopy(key=unique("ret"), barcode=barcode), "succeeded"),
    ]

    for command, status in sequence:
        publisher.publish(command)
        publisher.publish(command)  # the duplicate may run at the same time, in the other process
        outcome = await_outcome(engine, command.key)
        assert outcome.status == status, command.type
        await_deliveries(engine, command.key, 2)  # both delivered: one decided, one replayed
        assert await_outcome(engine, command.key) == outcome, command.type  # still that one

    [loan] = loans_of_copy(engine, barcode)
    assert (loan["member"], loan["renewals"], loan["returned_at"] is not None) == (
        borrower,
        1,
        True,
    )
    assert [r["status"] for r in reservations_of(engine, work)] == ["cancelled"]
    assert copy_status(engine, barcode) == "available"
    keys = [command.key for command, _ in sequence]
    # one stored outcome per key (its `attempts` may say 2: whichever of two concurrent
    # deliveries claims the key first records its own delivery number)
    ledger = rows(engine, "SELECT 1 FROM command_ledger WHERE idempotency_key = ANY(:k)", k=keys)
    assert len(ledger) == len(keys)


def test_concurrent_checkouts_of_one_copy_through_two_worker_processes(worker, publisher, engine):
    (first, second), _, barcode = library(publisher, engine, members=2)
    commands = [CheckoutCopy(key=unique("out"), member=m, barcode=barcode) for m in (first, second)]

    for command in commands:
        publisher.publish(command)
    outcomes = [await_outcome(engine, command.key) for command in commands]

    assert sorted(o.status for o in outcomes) == ["rejected", "succeeded"]
    assert {o.reason for o in outcomes if o.status == "rejected"} == {"copy_not_available"}
    assert len(loans_of_copy(engine, barcode)) == 1


def test_a_stale_loan_update_is_retried(worker, publisher, engine, session_factory, settings):
    """Another session renews the loan between the worker's read and its write: the
    worker's versioned UPDATE matches no row, the command is tried again, and that try
    applies the renewal on top of the other one. Batched, the batch's savepoint for it
    is rolled back and it runs again at once, alone, as the same attempt; unbatched,
    the task retries it as attempt 2."""
    (member,), _, barcode = library(publisher, engine, members=1)
    publish_and_wait(
        publisher, engine, CheckoutCopy(key=unique("out"), member=member, barcode=barcode)
    )
    command = RenewLoan(key=unique("renew"), member=member, barcode=barcode)

    with session_factory() as other:
        loan = other.scalars(
            select(Loan)
            .join(tables.copies, tables.copies.c.id == tables.loans.c.copy_id)
            .where(tables.copies.c.barcode == barcode, tables.loans.c.returned_at.is_(None))
        ).one()
        loan.renew(datetime.now(loan.due_at.tzinfo), settings.loan_policy(), others_waiting=0)
        other.flush()  # version 2 written but not committed: the worker reads version 1
        publisher.publish(command)
        wait_until_blocked_by(engine, other.execute(select(func.pg_backend_pid())).scalar_one())
        other.commit()  # the worker's UPDATE … WHERE version = 1 now matches nothing

    outcome = await_outcome(engine, command.key)

    assert outcome.status == "succeeded" and outcome.result["renewals"] == 2
    [row] = loans_of_copy(engine, barcode)
    assert (row["renewals"], row["version"]) == (2, 3)
    assert outcome.attempts == (1 if settings.batch_max_size > 1 else 2)
    # unbatched: attempt 1 failed on the stale version and was retried as a new
    # delivery; the retry ran the command (two deliveries, both counted as attempts).
    # Batched: one delivery, one attempt, the stale version still on record.
    delivery = "SELECT deliveries, attempts, last_error FROM command_deliveries "
    delivery += "WHERE idempotency_key = :k"
    with engine.connect() as connection:
        deliveries, attempts, last_error = connection.execute(
            text(delivery), {"k": command.key}
        ).one()
    assert (deliveries, attempts) == ((1, 1) if settings.batch_max_size > 1 else (2, 2))
    assert last_error.startswith("transient: StaleDataError")
