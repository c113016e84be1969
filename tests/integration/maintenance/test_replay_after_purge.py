"""A command redelivered after its ledger row was purged answers from its business row.

The ledger forgets a key after the retention window; `loans.idempotency_key` and
`orders.idempotency_key` do not. A checkout (or place-order) delivered again must give
the original answer and create nothing — also when the rules alone would now reject it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from producers.commands import CheckoutCopy, PlaceReservation, ReturnCopy
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.library import loans_of_copy, new_member, new_work
from tests.support.outcomes import ledger_rows, orders_with_key, stock_of
from worker.service.maintenance.ledger import purge_ledger


def forget(engine, key: str) -> None:
    """What the retention purge does to one key, done by hand."""
    with engine.begin() as connection:
        for table in ("command_ledger", "command_deliveries"):
            connection.execute(text(f"DELETE FROM {table} WHERE idempotency_key = :k"), {"k": key})
    assert ledger_rows(engine, key) == 0


def checkout(member: str, barcode: str, key: str | None = None) -> CheckoutCopy:
    return CheckoutCopy(key=key or unique("out"), member=member, barcode=barcode)


def still_on_loan(runner, member: str, barcode: str) -> None:
    """Nothing happened since: the copy is on loan to the member (at their limit)."""


def returned_and_on_the_shelf(runner, member: str, barcode: str) -> None:
    """The insert itself hits uq_loans_idempotency_key: the copy is free again."""
    run(runner, ReturnCopy(key=unique("ret"), barcode=barcode))


def returned_and_lent_to_someone_else(runner, member: str, barcode: str) -> None:
    run(runner, ReturnCopy(key=unique("ret"), barcode=barcode))
    assert run(runner, checkout(new_member(runner), barcode)).status == "succeeded"


@pytest.mark.parametrize(
    "since",
    [still_on_loan, returned_and_on_the_shelf, returned_and_lent_to_someone_else],
    ids=["still-on-loan", "returned-on-the-shelf", "lent-to-someone-else"],
)
def test_a_checkout_redelivered_after_its_ledger_row_was_purged_replays_its_loan(
    runner, engine, since: Callable[..., None]
):
    member = new_member(runner, loan_limit=1)
    _, [barcode] = new_work(runner)
    command = checkout(member, barcode)
    first = run(runner, command)
    since(runner, member, barcode)
    loans_before = loans_of_copy(engine, barcode)
    forget(engine, command.key)

    again = run(runner, command)
    third = run(runner, command)

    assert (again.status, again.replayed) == ("succeeded", False)
    assert again.result == first.result
    assert third.replayed and third.result == first.result  # stored in the ledger again
    assert loans_of_copy(engine, barcode) == loans_before
    assert [loan["member"] for loan in loans_before].count(member) == 1


def test_the_replayed_checkout_says_whether_it_collected_a_hold(runner, engine):
    member = new_member(runner)
    work, [barcode] = new_work(runner)
    run(runner, PlaceReservation(key=unique("res"), member=member, work=work))
    command = checkout(member, barcode)
    first = run(runner, command)
    assert first.result["reservation_fulfilled"] is True
    forget(engine, command.key)

    assert run(runner, command).result == first.result


def test_a_purged_checkout_key_reused_for_another_loan_is_refused(runner, engine):
    member, other = new_member(runner), new_member(runner)
    _, [barcode, spare] = new_work(runner, copies=2)
    key = unique("out")
    run(runner, checkout(member, barcode, key=key))
    forget(engine, key)

    reused = run(runner, checkout(other, spare, key=key))

    assert (reused.status, reused.reason) == ("rejected", "idempotency_key_reused")
    assert loans_of_copy(engine, spare) == []


def test_the_retention_purge_then_a_redelivered_checkout(runner, engine, tuned):
    """The same through the real purge job."""
    member = new_member(runner)
    _, [barcode] = new_work(runner)
    command = checkout(member, barcode)
    first = run(runner, command)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE command_ledger SET created_at = now() - interval '60 days' "
                "WHERE idempotency_key = :k"
            ),
            {"k": command.key},
        )
    purge_ledger(tuned(ledger_retention_days=30.0), engine)
    assert ledger_rows(engine, command.key) == 0

    assert run(runner, command).result == first.result
    assert len(loans_of_copy(engine, barcode)) == 1


def test_a_place_order_redelivered_after_the_purge_replays_even_with_the_stock_gone(runner, engine):
    """The rules alone would now say insufficient_stock; the order exists, so it is the
    answer (the executor looks for the key's row before storing a rejection)."""
    sku = new_product(runner, stock=2)
    command = order_for(sku, qty=2)
    first = run(runner, command)
    forget(engine, command.key)

    again = run(runner, command)

    assert (again.status, again.result) == ("succeeded", first.result)
    assert orders_with_key(engine, command.key) == 1
    assert stock_of(engine, sku) == (2, 2)
