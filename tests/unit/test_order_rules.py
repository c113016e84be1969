"""Order and stock rules on plain objects (no database)."""

from __future__ import annotations

import pytest

from worker.domain.errors import InsufficientStock, InvalidOrderTransition, UnknownSku
from worker.domain.orders import OrderStatus, Product, StockLevel, place_order


def product(pid: int, sku: str, on_hand: int, reserved: int = 0, price: int = 100) -> Product:
    item = Product(sku, sku.title(), price)
    item.id = pid
    item.stock = StockLevel(pid, on_hand, reserved)
    return item


def test_place_order_reserves_and_totals():
    catalogue = {"A": product(1, "A", 5, price=250), "B": product(2, "B", 1, price=1000)}

    order, movements = place_order("k", "c", [("A", 2), ("B", 1)], catalogue)

    assert order.total_cents == 1500
    assert [(m.product_id, m.reserved_delta, m.on_hand_delta) for m in movements] == [
        (1, 2, 0),
        (2, 1, 0),
    ]
    assert catalogue["A"].stock.available == 3


def test_every_shortfall_is_collected_before_raising():
    catalogue = {
        "A": product(1, "A", 1),
        "B": product(2, "B", 5, reserved=5),
        "C": product(3, "C", 9),
    }

    with pytest.raises(InsufficientStock) as error:
        place_order("k", "c", [("A", 2), ("B", 1), ("C", 1)], catalogue)

    assert [s["sku"] for s in error.value.details["shortfalls"]] == ["A", "B"]
    assert catalogue["C"].stock.reserved == 0  # nothing was reserved


def test_unknown_skus_are_all_named():
    with pytest.raises(UnknownSku) as error:
        place_order("k", "c", [("X", 1), ("Y", 1)], {})
    assert error.value.details["skus"] == ["X", "Y"]


def test_transitions_follow_the_allowed_paths():
    catalogue = {"A": product(1, "A", 5)}
    order, _ = place_order("k", "c", [("A", 2)], catalogue)
    order.order_number = "ORD-000001"
    stock = {1: catalogue["A"].stock}

    order.confirm_payment()
    movements = order.ship(stock, "ship-1")

    assert order.status == OrderStatus.SHIPPED
    assert (stock[1].on_hand, stock[1].reserved) == (3, 0)
    assert movements[0].on_hand_delta == -2
    with pytest.raises(InvalidOrderTransition, match="it is shipped"):
        order.cancel(stock, "c-1")


def test_cancel_releases_and_then_nothing_else_is_allowed():
    catalogue = {"A": product(1, "A", 5)}
    order, _ = place_order("k", "c", [("A", 2)], catalogue)
    order.order_number = "ORD-000002"
    stock = {1: catalogue["A"].stock}

    order.cancel(stock, "c-1")

    assert stock[1].reserved == 0
    for action in (order.confirm_payment, lambda: order.ship(stock, "s")):
        with pytest.raises(InvalidOrderTransition):
            action()
