"""Order status transitions and what they do to stock."""

from __future__ import annotations

from producers.commands import CancelOrder, ConfirmPayment, ShipOrder
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.outcomes import movement_totals, scalar, stock_of


def place(runner, sku, qty):
    outcome = run(runner, order_for(sku, qty=qty))
    assert outcome.status == "succeeded", outcome
    return outcome.result["order_number"]


def test_place_pay_ship_consumes_the_reserved_stock(runner, engine):
    sku = new_product(runner, stock=10)
    number = place(runner, sku, 4)

    paid = run(runner, ConfirmPayment(key=unique("pay"), order_number=number))
    shipped = run(runner, ShipOrder(key=unique("ship"), order_number=number))

    assert paid.result == {"order_number": number, "status": "paid"}
    assert shipped.result == {"order_number": number, "status": "shipped"}
    assert stock_of(engine, sku) == (6, 0) == movement_totals(engine, sku)


def test_cancel_releases_the_reserved_stock(runner, engine):
    sku = new_product(runner, stock=3)
    number = place(runner, sku, 3)
    assert stock_of(engine, sku) == (3, 3)

    cancelled = run(runner, CancelOrder(key=unique("cancel"), order_number=number))

    assert cancelled.result["status"] == "cancelled"
    assert stock_of(engine, sku) == (3, 0) == movement_totals(engine, sku)
    assert run(runner, order_for(sku, qty=3)).status == "succeeded"  # sellable again


def test_paid_order_can_be_cancelled(runner, engine):
    sku = new_product(runner, stock=2)
    number = place(runner, sku, 2)
    run(runner, ConfirmPayment(key=unique("pay"), order_number=number))

    assert run(runner, CancelOrder(key=unique("c"), order_number=number)).status == "succeeded"
    assert stock_of(engine, sku) == (2, 0)


def test_shipping_a_cancelled_order_is_rejected_with_a_reason(runner, engine):
    sku = new_product(runner, stock=2)
    number = place(runner, sku, 1)
    run(runner, CancelOrder(key=unique("cancel"), order_number=number))

    outcome = run(runner, ShipOrder(key=unique("ship"), order_number=number))

    assert (outcome.status, outcome.reason) == ("rejected", "invalid_order_transition")
    assert "cancelled" in outcome.message
    assert stock_of(engine, sku) == (2, 0)
    status = scalar(engine, "SELECT status FROM orders WHERE order_number = :n", n=number)
    assert status == "cancelled"


def test_shipping_an_unpaid_order_is_rejected(runner, engine):
    number = place(runner, new_product(runner, stock=1), 1)

    outcome = run(runner, ShipOrder(key=unique("ship"), order_number=number))

    assert outcome.reason == "invalid_order_transition"
    assert "placed" in outcome.message


def test_unknown_order_number_is_rejected(runner):
    outcome = run(runner, ConfirmPayment(key=unique("pay"), order_number="ORD-999999999"))

    assert (outcome.status, outcome.reason) == ("rejected", "order_not_found")


def test_restock_of_an_unknown_sku_is_rejected(runner):
    from producers.commands import RestockProduct

    outcome = run(runner, RestockProduct(key=unique("rs"), sku=unique("NOPE"), qty=1))

    assert outcome.reason == "unknown_sku"


def test_upsert_changes_price_for_new_orders_only(runner, engine):
    from producers.commands import UpsertProduct

    sku = new_product(runner, stock=5, price_cents=1000)
    first = run(runner, order_for(sku, qty=1))
    run(runner, UpsertProduct(key=unique("up"), sku=sku, name="Thing v2", price_cents=1500))
    second = run(runner, order_for(sku, qty=1))

    assert (first.result["total_cents"], second.result["total_cents"]) == (1000, 1500)
    snapshot = scalar(
        engine,
        "SELECT i.unit_price_cents FROM order_items i JOIN orders o ON o.id = i.order_id "
        "WHERE o.order_number = :n",
        n=first.result["order_number"],
    )
    assert snapshot == 1000
