"""Orders through the real path: publisher -> Redis -> celery worker processes -> PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from producers.commands import (
    CancelOrder,
    ConfirmPayment,
    PlaceOrder,
    RestockProduct,
    ShipOrder,
    UpsertProduct,
)
from producers.publisher import Publisher
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.outcomes import (
    await_deliveries,
    await_outcome,
    ledger_rows,
    movement_totals,
    orders_with_key,
    scalar,
    stock_of,
)

pytestmark = pytest.mark.e2e


def publish_and_wait(publisher, engine, command):
    publisher.publish(command)
    return await_outcome(engine, command.key)


def new_product(publisher, engine, stock: int) -> str:
    sku = unique("SKU")
    upsert = UpsertProduct(key=unique("up"), sku=sku, name="Mug", price_cents=900)
    assert publish_and_wait(publisher, engine, upsert).status == "succeeded"
    if stock:
        restock = RestockProduct(key=unique("rs"), sku=sku, qty=stock)
        assert publish_and_wait(publisher, engine, restock).status == "succeeded"
    return sku


def place(sku: str, qty: int = 1, key: str | None = None) -> PlaceOrder:
    return PlaceOrder(
        key=key or unique("order"), customer_ref="web", lines=[{"sku": sku, "qty": qty}]
    )


def test_published_twice_one_order_same_outcome(worker, publisher, engine):
    sku = new_product(publisher, engine, stock=3)
    command = place(sku, qty=2)

    publisher.publish(command)
    publisher.publish(command)
    outcome = await_outcome(engine, command.key)

    assert outcome.status == "succeeded"
    assert orders_with_key(engine, command.key) == 1
    assert stock_of(engine, sku) == (3, 2)


def test_published_three_times_concurrently_applies_once(worker, settings, engine, publisher):
    sku = new_product(publisher, engine, stock=5)
    command = place(sku, qty=2)

    def publish_from_its_own_producer(_: int) -> None:
        with Publisher(settings) as own:
            own.publish(command)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(publish_from_its_own_producer, range(3)))
    outcome = await_outcome(engine, command.key)

    assert outcome.status == "succeeded"
    assert orders_with_key(engine, command.key) == 1
    assert stock_of(engine, sku) == (5, 2) == movement_totals(engine, sku)


def test_two_orders_race_for_the_last_unit(worker, publisher, engine):
    sku = new_product(publisher, engine, stock=1)
    commands = [place(sku), place(sku)]

    for command in commands:
        publisher.publish(command)
    outcomes = [await_outcome(engine, c.key) for c in commands]

    assert sorted(o.status for o in outcomes) == ["rejected", "succeeded"]
    assert {o.reason for o in outcomes} == {None, "insufficient_stock"}
    assert stock_of(engine, sku) == (1, 1)


def test_fifty_orders_against_ten_units(worker, publisher, engine):
    sku = new_product(publisher, engine, stock=10)
    commands = [place(sku) for _ in range(50)]

    for command in commands:
        publisher.publish(command)
    outcomes = [await_outcome(engine, c.key, timeout=60) for c in commands]

    assert sum(o.status == "succeeded" for o in outcomes) == 10
    assert {o.reason for o in outcomes if o.status != "succeeded"} == {"insufficient_stock"}
    assert stock_of(engine, sku) == (10, 10) == movement_totals(engine, sku)


def test_failure_before_commit_then_redelivery_applies_once(worker, publisher, engine):
    sku = new_product(publisher, engine, stock=2)
    command = place(sku, qty=2, key=unique("FAILONCE"))

    outcome = publish_and_wait(publisher, engine, command)

    assert outcome.status == "succeeded"
    assert outcome.attempts == 2  # the first attempt rolled back, the retry committed
    assert orders_with_key(engine, command.key) == 1
    assert ledger_rows(engine, command.key) == 1
    assert stock_of(engine, sku) == (2, 2) == movement_totals(engine, sku)
    last_error = "SELECT last_error FROM command_deliveries WHERE idempotency_key = :k"
    assert scalar(engine, last_error, k=command.key) == (
        f"transient: InjectedFault: injected fault at before_commit for {command.key}"
    )


def test_reused_key_with_another_payload_leaves_the_original(worker, publisher, engine):
    sku = new_product(publisher, engine, stock=5)
    original = place(sku, qty=1)
    first = publish_and_wait(publisher, engine, original)

    publisher.publish(place(sku, qty=3, key=original.key))

    # The refused delivery is counted by the statement that finds the key decided; the
    # key keeps its outcome, and the lookup reports the refused reuse.
    await_deliveries(engine, original.key, 2)
    outcome = eventually(
        lambda: await_outcome(engine, original.key),
        until=lambda status: status.key_reuse is not None,
        what=f"the refused reuse of {original.key} in its lookup",
    )
    assert (outcome.status, outcome.result) == (first.status, first.result)
    assert outcome.key_reuse.refusals == 1
    assert orders_with_key(engine, original.key) == 1
    assert stock_of(engine, sku) == (5, 1)


def test_full_lifecycle_and_cancel_through_the_worker(worker, publisher, engine):
    sku = new_product(publisher, engine, stock=4)
    kept = publish_and_wait(publisher, engine, place(sku, qty=1)).result["order_number"]
    dropped = publish_and_wait(publisher, engine, place(sku, qty=2)).result["order_number"]

    steps = [
        ConfirmPayment(key=unique("pay"), order_number=kept),
        ShipOrder(key=unique("ship"), order_number=kept),
        CancelOrder(key=unique("cancel"), order_number=dropped),
    ]
    results = [publish_and_wait(publisher, engine, step) for step in steps]
    illegal = publish_and_wait(
        publisher, engine, ShipOrder(key=unique("ship"), order_number=dropped)
    )

    assert [r.result["status"] for r in results] == ["paid", "shipped", "cancelled"]
    assert (illegal.status, illegal.reason) == ("rejected", "invalid_order_transition")
    assert stock_of(engine, sku) == (3, 0) == movement_totals(engine, sku)
