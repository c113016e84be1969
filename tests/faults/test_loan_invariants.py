"""The loan invariants the fault tests and the chaos run rely on: they hold after a real
library day run through the runner, and each one catches its violation planted by hand.

In-process (no worker): a check that could never fail would make every fault test that
uses it pass for nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text

from producers.commands import (
    CancelReservation,
    CheckoutCopy,
    Command,
    PlaceReservation,
    RenewLoan,
    ReturnCopy,
)
from tests.support.commands import run
from tests.support.ids import unique
from tests.support.invariants import CHECKS, Scope, assert_invariants
from tests.support.library import new_member, new_work
from worker.service.runner import CommandRunner

pytestmark = pytest.mark.faults

LOAN_CHECKS = ("double_loans", "loans_vs_ledger", "copy_status", "over_loan_limit")


@dataclass
class LibraryDay:
    """What the day left behind: Y on loan to A (renewed once), X on hold for B."""

    scope: Scope
    params: dict[str, str]


@pytest.fixture(scope="module")
def day(settings, engine, session_factory) -> Iterator[LibraryDay]:
    runner = CommandRunner(settings, engine, session_factory)
    a, b = new_member(runner, loan_limit=2), new_member(runner, loan_limit=1)
    work, (x, y) = new_work(runner, copies=2)
    script: list[tuple[Command, str]] = [
        (CheckoutCopy(key=unique("co"), member=a, barcode=x), "succeeded"),
        (CheckoutCopy(key=unique("co"), member=a, barcode=y), "succeeded"),
        (PlaceReservation(key=unique("rsv"), member=b, work=work), "succeeded"),  # queued
        (RenewLoan(key=unique("rn"), member=a, barcode=x), "rejected"),  # B waits
        (ReturnCopy(key=unique("ret"), barcode=x), "succeeded"),  # X on hold for B
        (CheckoutCopy(key=unique("co"), member=a, barcode=x), "rejected"),
        (CheckoutCopy(key=unique("co"), member=b, barcode=x), "succeeded"),  # collects it
        (PlaceReservation(key=unique("rsv"), member=a, work=work), "succeeded"),
        (CancelReservation(key=unique("cxl"), member=a, work=work), "succeeded"),
        (ReturnCopy(key=unique("ret"), barcode=x), "succeeded"),  # nobody waits
        (RenewLoan(key=unique("rn"), member=a, barcode=y), "succeeded"),
        (PlaceReservation(key=unique("rsv"), member=b, work=work), "succeeded"),  # ready on X
    ]
    for command, expected in script:
        outcome = run(runner, command)
        assert outcome.status == expected, (command, outcome)
    keys = [command.key for command, _ in script]
    params = {
        "a": a,
        "b": b,
        "work": work,
        "x": x,
        "y": y,
        "first_checkout": keys[0],
        "rejected_checkout": keys[5],
    }
    yield LibraryDay(Scope(keys, barcodes=[x, y]), params)


def test_a_library_day_keeps_every_loan_invariant(engine: Engine, day: LibraryDay):
    report = assert_invariants(engine, day.scope)

    assert report.skipped == ["oversold"]  # no products in this scope
    assert report.outcomes == {"succeeded": 10, "rejected": 2}


def test_loan_checks_are_skipped_without_copies_in_scope(engine: Engine, day: LibraryDay):
    report = assert_invariants(engine, Scope(day.scope.keys))

    assert set(report.skipped) == {*LOAN_CHECKS, "oversold"}  # no products either


ACTIVE_LOAN_OF_Y = (
    "(SELECT lo.id FROM loans lo JOIN copies c ON c.id = lo.copy_id "
    "WHERE c.barcode = :y AND lo.returned_at IS NULL)"
)
READY_FOR_B = (
    "(SELECT r.id FROM reservations r JOIN members m ON m.id = r.member_id "
    "WHERE m.member_number = :b AND r.status = 'ready')"
)

PLANTED = {
    "second active loan of a copy": (
        "double_loans",
        [
            "DROP INDEX uq_loans_copy_id_active",
            "INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at) "
            "SELECT copy_id, member_id, 'planted-' || id, now(), now() + interval '1 day' "
            f"FROM loans WHERE id = {ACTIVE_LOAN_OF_Y}",
        ],
        "copy {y}: 2 active loans",
    ),
    "a loan for a rejected checkout": (
        "effects_without_outcome",
        [
            "INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at, "
            "returned_at) SELECT c.id, m.id, :rejected_checkout, now(), "
            "now() + interval '1 day', now() FROM copies c, members m "
            "WHERE c.barcode = :x AND m.member_number = :a",
        ],
        "{rejected_checkout}",
    ),
    "a succeeded checkout without its loan": (
        "outcomes_without_effects",
        ["DELETE FROM loans WHERE idempotency_key = :first_checkout"],
        "checkout {first_checkout}: succeeded but no loan",
    ),
    "a loan closed without a return": (
        "loans_vs_ledger",
        [f"UPDATE loans SET returned_at = now() WHERE id = {ACTIVE_LOAN_OF_Y}"],
        "return of {y} ",
    ),
    "a renewal applied twice": (
        "loans_vs_ledger",
        [f"UPDATE loans SET renewals = renewals + 1 WHERE id = {ACTIVE_LOAN_OF_Y}"],
        "renewals of {y}: 2 renewal(s) on its loans, 1 succeeded renewal(s)",
    ),
    "a reservation nobody placed": (
        "loans_vs_ledger",
        [
            "INSERT INTO reservations (work_id, member_id, status, queued_at) "
            "SELECT w.id, m.id, 'queued', now() FROM works w, members m "
            "WHERE w.work_code = :work AND m.member_number = :a",
        ],
        ": 1 row(s), 0 succeeded reservation(s)",
    ),
    "a cancellation nobody asked for": (
        "loans_vs_ledger",
        [f"UPDATE reservations SET status = 'cancelled' WHERE id = {READY_FOR_B}"],
        "cancelled reservations of {b} {work}: 1 row(s), 0 succeeded cancellation(s)",
    ),
    "a hold fulfilled without a checkout": (
        "loans_vs_ledger",
        [f"UPDATE reservations SET status = 'fulfilled' WHERE id = {READY_FOR_B}"],
        "holds collected on {x}: 2 reservation(s) fulfilled, 1 checkout(s)",
    ),
    "a copy on loan shown available": (
        "copy_status",
        ["UPDATE copies SET status = 'available' WHERE barcode = :y"],
        "copy {y} is available with 1 active loan(s) and 0 hold(s)",
    ),
    "an available copy while the queue waits": (
        "copy_status",
        [
            "UPDATE copies SET status = 'available' WHERE barcode = :x",
            "UPDATE reservations SET status = 'queued', copy_id = NULL, ready_until = NULL "
            f"WHERE id = {READY_FOR_B}",
        ],
        "work {work}: a copy is available while 1 reservation(s) wait",
    ),
    "a member over the loan limit": (
        "over_loan_limit",
        ["UPDATE members SET loan_limit = 0 WHERE member_number = :a"],
        "member {a}: 1 active loans, limit 0",
    ),
}


@pytest.mark.parametrize("planted", PLANTED, ids=list(PLANTED))
def test_each_loan_invariant_catches_its_violation(engine: Engine, day: LibraryDay, planted):
    check, statements, expected = PLANTED[planted]
    with engine.connect() as connection:
        assert CHECKS[check](connection, day.scope) == []
        for statement in statements:
            connection.execute(text(statement), day.params)
        found = CHECKS[check](connection, day.scope)
        connection.rollback()

    assert any(expected.format(**day.params) in item for item in found), found
