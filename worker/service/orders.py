"""Order and stock handlers: `handler(command, uow) -> result`.

Each runs inside the executor's transaction, after the ledger claim. A `Rejected`
exception becomes the stored outcome; the handler's writes are then undone.
"""

from __future__ import annotations

from typing import Any

from producers.commands import (
    CancelOrder,
    ConfirmPayment,
    PlaceOrder,
    RestockProduct,
    ShipOrder,
    UpsertProduct,
)
from worker.domain.contacts import phone_key
from worker.domain.errors import OrderNotFound, UnknownSku
from worker.domain.orders import Order, StockLevel, StockMovement, place_order
from worker.service.context import CommandContext
from worker.service.unit_of_work import UnitOfWork


def upsert_product(command: UpsertProduct, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    product, created = uow.products.ensure(command.sku, command.name, command.price_cents)
    changed = created or product.update(command.name, command.price_cents)
    if changed and not created:
        uow.products.save(product)
    return {"sku": product.sku, "created": created, "changed": changed}


def restock_product(
    command: RestockProduct, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    product = uow.products.lock_by_skus([command.sku]).get(command.sku)
    if product is None:
        raise UnknownSku(f"unknown sku: {command.sku}", skus=[command.sku])
    movement = product.stock.receive(command.qty, command.key)
    with uow.batched():
        uow.products.save_stock([product.stock])
        uow.products.add_movements([movement])
    return {
        "sku": product.sku,
        "on_hand": product.stock.on_hand,
        "available": product.stock.available,
    }


def place_order_handler(
    command: PlaceOrder, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    catalogue = uow.products.lock_by_skus(line.sku for line in command.lines)
    ctx.failpoint("after_lock")
    order, movements = place_order(
        command.key,
        command.customer_ref,
        [(line.sku, line.qty) for line in command.lines],
        catalogue,
    )
    uow.orders.add(order)  # the order number comes from the database sequence
    with uow.batched():
        uow.orders.add_items(order)
        uow.products.save_stock(product.stock for product in catalogue.values())
        uow.products.add_movements(movements)
        # after the stock locks, like every place_order: no lock-order cycle
        uow.customers.note(command.customer_ref, _contact_details(command, ctx))
    return {
        "order_number": order.order_number,
        "total_cents": order.total_cents,
        "lines": len(order.items),
    }


def _contact_details(command: PlaceOrder, ctx: CommandContext) -> dict[str, str | None] | None:
    details = command.customer
    if details is None:
        return None
    return {
        "name": details.name,
        "email": details.email,
        "phone": details.phone,
        "phone_digits": phone_key(details.phone, ctx.phone_region),
    }


def _locked_order(uow: UnitOfWork, order_number: str) -> Order:
    order = uow.orders.lock_by_number(order_number)
    if order is None:
        raise OrderNotFound(f"no order {order_number}", order_number=order_number)
    return order


def _save_transition(
    uow: UnitOfWork,
    order: Order,
    stock: dict[int, StockLevel],
    movements: list[StockMovement],
) -> None:
    uow.orders.save(order)
    with uow.batched():
        uow.products.save_stock(stock.values())
        uow.products.add_movements(movements)


def _order_result(order: Order) -> dict[str, Any]:
    return {"order_number": order.order_number, "status": str(order.status)}


def confirm_payment(
    command: ConfirmPayment, uow: UnitOfWork, ctx: CommandContext
) -> dict[str, Any]:
    order = _locked_order(uow, command.order_number)
    order.confirm_payment()
    uow.orders.save(order)
    return _order_result(order)


def ship_order(command: ShipOrder, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    order = _locked_order(uow, command.order_number)
    stock = uow.products.lock_stock(order.product_ids())
    _save_transition(uow, order, stock, order.ship(stock, command.key))
    return _order_result(order)


def cancel_order(command: CancelOrder, uow: UnitOfWork, ctx: CommandContext) -> dict[str, Any]:
    order = _locked_order(uow, command.order_number)
    stock = uow.products.lock_stock(order.product_ids())
    if command.reason == "payment_expired":
        movements = order.expire_unpaid(stock, command.key)
    else:
        movements = order.cancel(stock, command.key)
    _save_transition(uow, order, stock, movements)
    return {**_order_result(order), "cancel_reason": command.reason}


def replay_existing_order(command: PlaceOrder, uow: UnitOfWork) -> dict[str, Any]:
    """The result of the order this key already created.

    Reached when the ledger row of the key was purged (retention) and the command was
    delivered again: `orders.idempotency_key` is unique, so the insert fails and the
    existing order is answered instead of creating a second one.
    """
    order = uow.orders.by_idempotency_key(command.key)
    if order is None:  # the violation came from elsewhere: let the taxonomy decide
        raise LookupError(f"no order for key {command.key}")
    return {
        "order_number": order.order_number,
        "total_cents": order.total_cents,
        "lines": len(order.items),
    }


HANDLERS = {
    UpsertProduct: upsert_product,
    RestockProduct: restock_product,
    PlaceOrder: place_order_handler,
    ConfirmPayment: confirm_payment,
    ShipOrder: ship_order,
    CancelOrder: cancel_order,
}

#: Commands whose business row carries the idempotency key under a unique constraint:
#: after the ledger row is purged, a redelivery replays the existing row.
RECOVERIES = {PlaceOrder: replay_existing_order}
