"""All or nothing: a failure before commit leaves no order, no ledger row, stock unchanged."""

from __future__ import annotations

import pytest

from producers.commands import PlaceOrder
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.outcomes import ledger_rows, movement_totals, orders_with_key, scalar, stock_of
from worker.service.failpoints import Failpoints
from worker.service.runner import CommandRunner, RetryLater


@pytest.fixture
def failing_runner(settings, engine, session_factory):
    """A runner whose first attempt of keys starting `FAIL-` dies just before COMMIT."""
    return CommandRunner(
        settings, engine, session_factory, Failpoints("before_commit=raise*1@FAIL-")
    )


def test_failure_after_stock_update_leaves_nothing_and_redelivery_applies_once(
    runner, failing_runner, engine
):
    sku = new_product(runner, stock=4)
    command = order_for(sku, qty=3, key=unique("FAIL"))

    first = failing_runner.run(command.message(), command.type)

    assert isinstance(first, RetryLater)  # transient: the task will retry it
    assert orders_with_key(engine, command.key) == 0
    assert ledger_rows(engine, command.key) == 0
    assert stock_of(engine, sku) == (4, 0)

    second = failing_runner.run(command.message(), command.type)  # the redelivery
    third = failing_runner.run(command.message(), command.type)  # a late duplicate

    assert second.status == "succeeded" and third.replayed
    assert third.result == second.result
    assert orders_with_key(engine, command.key) == 1
    assert stock_of(engine, sku) == (4, 3) == movement_totals(engine, sku)


def test_reused_key_with_a_different_payload_is_refused_and_changes_nothing(runner, engine):
    sku = new_product(runner, stock=5)
    original = order_for(sku, qty=1)
    run(runner, original)

    reused = PlaceOrder(
        key=original.key, customer_ref="someone-else", lines=[{"sku": sku, "qty": 4}]
    )
    outcome = run(runner, reused)

    assert (outcome.status, outcome.reason) == ("rejected", "idempotency_key_reused")
    assert stock_of(engine, sku) == (5, 1)
    customer = "SELECT customer_ref FROM orders WHERE idempotency_key = :k"
    assert scalar(engine, customer, k=original.key) == "cust-1"
    # the stored outcome of the key is still the original success
    assert run(runner, original).status == "succeeded"
