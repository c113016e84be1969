"""Placing orders on real PostgreSQL: exactly once, never oversold, all shortfalls named."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from producers.commands import PlaceOrder
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.outcomes import movement_totals, orders_with_key, scalar, stock_of


def test_order_reserves_stock_and_snapshots_prices(runner, engine):
    sku = new_product(runner, stock=5, price_cents=1250)

    outcome = run(runner, order_for(sku, qty=2))

    assert outcome.status == "succeeded"
    assert outcome.result["order_number"].startswith("ORD-")
    assert outcome.result["total_cents"] == 2500
    assert stock_of(engine, sku) == (5, 2)
    assert movement_totals(engine, sku) == (5, 2)


def test_same_key_twice_gives_one_order_and_the_same_outcome(runner, engine):
    sku = new_product(runner, stock=5)
    command = order_for(sku, qty=1)

    first, second = run(runner, command), run(runner, command)

    assert (second.status, second.result) == (first.status, first.result)
    assert second.replayed and not first.replayed
    assert orders_with_key(engine, command.key) == 1
    assert stock_of(engine, sku) == (5, 1)


def test_every_shortfall_is_named_in_one_rejection(runner, engine):
    short_a, short_b, fine = (new_product(runner, stock=n) for n in (1, 0, 9))
    command = PlaceOrder(
        key=unique("order"),
        customer_ref="c",
        lines=[{"sku": short_a, "qty": 2}, {"sku": short_b, "qty": 1}, {"sku": fine, "qty": 3}],
    )

    outcome = run(runner, command)

    assert (outcome.status, outcome.reason) == ("rejected", "insufficient_stock")
    assert {s["sku"] for s in outcome.details["shortfalls"]} == {short_a, short_b}
    assert short_a in outcome.message and short_b in outcome.message
    assert stock_of(engine, fine) == (9, 0)  # nothing reserved on the line that fitted
    # the rejection is stored and replayed, not re-evaluated
    assert run(runner, command).replayed


def test_concurrent_orders_for_the_last_unit(runner, engine):
    sku = new_product(runner, stock=1)
    commands = [order_for(sku), order_for(sku)]

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda c: run(runner, c), commands))

    assert sorted(o.status for o in outcomes) == ["rejected", "succeeded"]
    assert next(o for o in outcomes if o.status == "rejected").reason == "insufficient_stock"
    assert stock_of(engine, sku) == (1, 1)


def test_fifty_concurrent_orders_against_ten_units(runner, engine):
    sku = new_product(runner, stock=10)
    commands = [order_for(sku) for _ in range(50)]

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda c: run(runner, c), commands))

    assert sum(o.status == "succeeded" for o in outcomes) == 10
    assert {o.reason for o in outcomes if o.status == "rejected"} == {"insufficient_stock"}
    count = "SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id WHERE i.sku = :s"
    assert scalar(engine, count, s=sku) == 10
    assert stock_of(engine, sku) == (10, 10)
    assert movement_totals(engine, sku) == stock_of(engine, sku)


def test_three_concurrent_deliveries_of_one_key_apply_once(runner, engine):
    sku = new_product(runner, stock=5)
    command = order_for(sku, qty=2)

    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(lambda c: run(runner, c), [command] * 3))

    assert len({(o.status, o.result["order_number"]) for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert orders_with_key(engine, command.key) == 1
    assert stock_of(engine, sku) == (5, 2)
