"""Orders and stock: the rules, with no knowledge of how they are stored.

Stock keeps `on_hand` (units in the building) and `reserved` (promised to placed or
paid orders); `available = on_hand - reserved`. Every change to either number comes
with a `StockMovement`, so stock always reconciles with its movement history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from worker.domain.errors import (
    InsufficientStock,
    InvalidOrderTransition,
    UnknownSku,
)


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


#: The only status changes an order may make.
ALLOWED_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class MovementReason(StrEnum):
    RESTOCK = "restock"
    RESERVE = "reserve"
    RELEASE = "release"
    SHIP = "ship"


class Product:
    """A sellable item; its price is in integer minor units (cents)."""

    id: int
    version: int
    stock: StockLevel

    def __init__(self, sku: str, name: str, price_cents: int) -> None:
        self.sku = sku
        self.name = name
        self.price_cents = price_cents

    def update(self, name: str, price_cents: int) -> bool:
        """Set name and price; return whether anything changed."""
        changed = (self.name, self.price_cents) != (name, price_cents)
        self.name, self.price_cents = name, price_cents
        return changed


class StockMovement:
    """One change to a product's stock, and why."""

    def __init__(
        self,
        product_id: int,
        on_hand_delta: int,
        reserved_delta: int,
        reason: MovementReason,
        command_key: str,
        order: Order | None = None,
    ) -> None:
        self.product_id = product_id
        self.on_hand_delta = on_hand_delta
        self.reserved_delta = reserved_delta
        self.reason = reason
        self.command_key = command_key
        self.order = order


class StockLevel:
    """The stock of one product."""

    def __init__(self, product_id: int, on_hand: int = 0, reserved: int = 0) -> None:
        self.product_id = product_id
        self.on_hand = on_hand
        self.reserved = reserved

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def _move(
        self, on_hand: int, reserved: int, reason: MovementReason, key: str, order: Order | None
    ) -> StockMovement:
        self.on_hand += on_hand
        self.reserved += reserved
        return StockMovement(self.product_id, on_hand, reserved, reason, key, order)

    def receive(self, qty: int, key: str) -> StockMovement:
        return self._move(qty, 0, MovementReason.RESTOCK, key, None)

    def reserve(self, qty: int, key: str, order: Order) -> StockMovement:
        if qty > self.available:  # callers check first; this guards the invariant
            raise InsufficientStock(f"only {self.available} available")
        return self._move(0, qty, MovementReason.RESERVE, key, order)

    def release(self, qty: int, key: str, order: Order) -> StockMovement:
        return self._move(0, -qty, MovementReason.RELEASE, key, order)

    def consume(self, qty: int, key: str, order: Order) -> StockMovement:
        """Reserved units leave the building: both on_hand and reserved drop."""
        return self._move(-qty, -qty, MovementReason.SHIP, key, order)


class OrderItem:
    """One order line with the price as it was when the order was placed."""

    def __init__(self, product_id: int, sku: str, qty: int, unit_price_cents: int) -> None:
        self.product_id = product_id
        self.sku = sku
        self.qty = qty
        self.unit_price_cents = unit_price_cents
        self.line_total_cents = qty * unit_price_cents


class Order:
    """A customer's order; its status only moves along `ALLOWED_TRANSITIONS`."""

    id: int
    order_number: str
    version: int
    created_at: datetime

    def __init__(self, idempotency_key: str, customer_ref: str, items: list[OrderItem]) -> None:
        self.idempotency_key = idempotency_key
        self.customer_ref = customer_ref
        self.items = items
        self.status = OrderStatus.PLACED
        self.total_cents = sum(item.line_total_cents for item in items)

    def _transition(self, target: OrderStatus, verb: str) -> None:
        current = OrderStatus(self.status)
        if target not in ALLOWED_TRANSITIONS[current]:
            raise InvalidOrderTransition(
                f"cannot {verb} order {self.order_number}: it is {current.value}",
                order_number=self.order_number,
                status=current.value,
                requested=target.value,
            )
        self.status = target

    def confirm_payment(self) -> None:
        self._transition(OrderStatus.PAID, "confirm payment for")

    def ship(self, stock: Mapping[int, StockLevel], key: str) -> list[StockMovement]:
        self._transition(OrderStatus.SHIPPED, "ship")
        return [stock[item.product_id].consume(item.qty, key, self) for item in self.items]

    def cancel(self, stock: Mapping[int, StockLevel], key: str) -> list[StockMovement]:
        self._transition(OrderStatus.CANCELLED, "cancel")
        return [stock[item.product_id].release(item.qty, key, self) for item in self.items]

    def expire_unpaid(self, stock: Mapping[int, StockLevel], key: str) -> list[StockMovement]:
        """Cancel an order whose payment never came; a paid order is left alone."""
        current = OrderStatus(self.status)
        if current is not OrderStatus.PLACED:
            raise InvalidOrderTransition(
                f"cannot expire order {self.order_number}: it is {current.value}",
                order_number=self.order_number,
                status=current.value,
                requested=OrderStatus.CANCELLED.value,
            )
        return self.cancel(stock, key)

    def product_ids(self) -> list[int]:
        return [item.product_id for item in self.items]


def place_order(
    key: str,
    customer_ref: str,
    lines: Iterable[tuple[str, int]],
    catalogue: Mapping[str, Product],
) -> tuple[Order, list[StockMovement]]:
    """Reserve stock for every line and build the order, or reject the whole order.

    Every unknown SKU, then every shortfall, is collected before one error is raised,
    so the caller learns everything wrong with the order at once.
    """
    lines = list(lines)
    unknown = [sku for sku, _ in lines if sku not in catalogue]
    if unknown:
        raise UnknownSku(f"unknown sku: {', '.join(unknown)}", skus=unknown)
    shortfalls = [
        {"sku": sku, "requested": qty, "available": catalogue[sku].stock.available}
        for sku, qty in lines
        if qty > catalogue[sku].stock.available
    ]
    if shortfalls:
        described = ", ".join(
            f"{s['sku']} (requested {s['requested']}, available {s['available']})"
            for s in shortfalls
        )
        raise InsufficientStock(f"insufficient stock for {described}", shortfalls=shortfalls)
    items = [
        OrderItem(catalogue[sku].id, sku, qty, catalogue[sku].price_cents) for sku, qty in lines
    ]
    order = Order(key, customer_ref, items)
    movements = [catalogue[sku].stock.reserve(qty, key, order) for sku, qty in lines]
    return order, movements
