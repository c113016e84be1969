"""Which rows a batch locks before any of its commands runs.

A batch decides many commands in one transaction. If two batches took their row locks
command by command, batch A (order for SKU 1, then SKU 2) and batch B (SKU 2, then
SKU 1) could deadlock. So every row a command names is locked up front, for the whole
batch, in one global order — the order every single command already follows:

    ledger keys → orders → products → stock → customers → members → works → copies

each kind in id order. A command's own locks are then taken again by its handler,
which costs no wait (its transaction holds them). Rows found only through other rows
(the copy a ready reservation holds, a work's queue head) are locked by the handler
as before; should that ever close a cycle, PostgreSQL reports a deadlock within
`deadlock_timeout`, and only that command's savepoint is rolled back and retried.

One statement per kind of row, in the global lock order, each in id order. Members
and works are locked `FOR NO KEY UPDATE` like their handlers do (inserting a loan or
reservation that references them must not wait), products too (an order item's
foreign key check takes `FOR KEY SHARE` on its product); the rest `FOR UPDATE`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from producers.commands import (
    AddCopy,
    AddWork,
    CancelOrder,
    CancelReservation,
    CheckoutCopy,
    Command,
    ConfirmPayment,
    ExpireReservation,
    PlaceOrder,
    PlaceReservation,
    RegisterMember,
    RestockProduct,
    ReturnCopy,
    ShipOrder,
    UpsertProduct,
)
from worker.adapters.repositories import HeldProducts, ProductRow
from worker.adapters.sql import Sql


@dataclass
class LockPlan:
    """The rows a batch locks up front, by the names its commands give them."""

    order_numbers: set[str] = field(default_factory=set)
    #: products whose own row is updated (name, price)
    product_skus: set[str] = field(default_factory=set)
    stock_skus: set[str] = field(default_factory=set)
    #: stock rows of these orders' items (shipping or cancelling moves their stock)
    stock_of_orders: set[str] = field(default_factory=set)
    customer_refs: set[str] = field(default_factory=set)
    member_numbers: set[str] = field(default_factory=set)
    work_codes: set[str] = field(default_factory=set)
    #: works locked through one of their copies (a return may hand the copy on)
    works_of_barcodes: set[str] = field(default_factory=set)
    works_of_reservations: set[int] = field(default_factory=set)
    copy_barcodes: set[str] = field(default_factory=set)

    def add(self, other: LockPlan) -> None:
        for name, rows in vars(other).items():
            getattr(self, name).update(rows)

    @property
    def is_empty(self) -> bool:
        return not any(vars(self).values())


def _place_order(command: PlaceOrder) -> LockPlan:
    details = command.customer
    named = details is not None and bool(details.model_dump(exclude_none=True))
    customers = {command.customer_ref} if named else set()
    return LockPlan(stock_skus={line.sku for line in command.lines}, customer_refs=customers)


PLANNERS: dict[type[Command], Callable[[Any], LockPlan]] = {
    UpsertProduct: lambda c: LockPlan(product_skus={c.sku}),
    RestockProduct: lambda c: LockPlan(stock_skus={c.sku}),
    PlaceOrder: _place_order,
    ConfirmPayment: lambda c: LockPlan(order_numbers={c.order_number}),
    ShipOrder: lambda c: LockPlan(order_numbers={c.order_number}, stock_of_orders={c.order_number}),
    CancelOrder: lambda c: LockPlan(
        order_numbers={c.order_number}, stock_of_orders={c.order_number}
    ),
    RegisterMember: lambda c: LockPlan(member_numbers={c.member}),
    AddWork: lambda c: LockPlan(work_codes={c.work}),
    AddCopy: lambda c: LockPlan(work_codes={c.work}),
    CheckoutCopy: lambda c: LockPlan(member_numbers={c.member}, copy_barcodes={c.barcode}),
    ReturnCopy: lambda c: LockPlan(works_of_barcodes={c.barcode}, copy_barcodes={c.barcode}),
    PlaceReservation: lambda c: LockPlan(member_numbers={c.member}, work_codes={c.work}),
    CancelReservation: lambda c: LockPlan(member_numbers={c.member}, work_codes={c.work}),
    ExpireReservation: lambda c: LockPlan(works_of_reservations={c.reservation_id}),
}
"""Commands missing here lock nothing up front (renewals and overdue marks update a
loan by its version, without a row lock)."""


def lock_plan(commands: Iterable[Command]) -> LockPlan:
    """The rows `commands` name, merged into one plan."""
    plan = LockPlan()
    for command in commands:
        planner = PLANNERS.get(type(command))
        if planner is not None:
            plan.add(planner(command))
    return plan


_ORDERS = "SELECT id FROM orders WHERE order_number = ANY(%s) ORDER BY id FOR UPDATE"
_PRODUCTS = "SELECT id FROM products WHERE sku = ANY(%s) ORDER BY id FOR NO KEY UPDATE"
_STOCK = """
    SELECT p.id, p.sku, p.name, p.price_cents, p.version, s.on_hand, s.reserved
    FROM stock_levels s JOIN products p ON p.id = s.product_id
    WHERE s.product_id IN (
        SELECT id FROM products WHERE sku = ANY(%(skus)s)
        UNION ALL
        SELECT i.product_id FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE o.order_number = ANY(%(orders)s)
    )
    ORDER BY s.product_id
    FOR UPDATE OF s
"""
_CUSTOMERS = "SELECT id FROM customers WHERE customer_ref = ANY(%s) ORDER BY id FOR UPDATE"
_MEMBERS = "SELECT id FROM members WHERE member_number = ANY(%s) ORDER BY id FOR NO KEY UPDATE"
_WORKS = """
    SELECT w.id FROM works w
    WHERE w.work_code = ANY(%(codes)s)
       OR w.id IN (SELECT work_id FROM copies WHERE barcode = ANY(%(barcodes)s))
       OR w.id IN (SELECT work_id FROM reservations WHERE id = ANY(%(reservations)s))
    ORDER BY w.id
    FOR NO KEY UPDATE
"""
_COPIES = "SELECT id FROM copies WHERE barcode = ANY(%s) ORDER BY id FOR UPDATE"


def lock_up_front(sql: Sql, plan: LockPlan) -> HeldProducts:
    """Lock every row `plan` names, kind by kind in the global order (the statements go
    in one round trip and run in order); return the product and stock rows locked, for
    the batch's commands to read."""
    statements: list[tuple[str, Any]] = []
    if plan.order_numbers:
        statements.append((_ORDERS, (sorted(plan.order_numbers),)))
    if plan.product_skus:
        statements.append((_PRODUCTS, (sorted(plan.product_skus),)))
    stock_at = len(statements)
    if plan.stock_skus or plan.stock_of_orders:
        stock = {"skus": sorted(plan.stock_skus), "orders": sorted(plan.stock_of_orders)}
        statements.append((_STOCK, stock))
    if plan.customer_refs:
        statements.append((_CUSTOMERS, (sorted(plan.customer_refs),)))
    if plan.member_numbers:
        statements.append((_MEMBERS, (sorted(plan.member_numbers),)))
    if plan.work_codes or plan.works_of_barcodes or plan.works_of_reservations:
        works = {
            "codes": sorted(plan.work_codes),
            "barcodes": sorted(plan.works_of_barcodes),
            "reservations": sorted(plan.works_of_reservations),
        }
        statements.append((_WORKS, works))
    if plan.copy_barcodes:
        statements.append((_COPIES, (sorted(plan.copy_barcodes),)))
    results = sql.all_in_one_trip(statements)
    held = HeldProducts()
    if plan.stock_skus or plan.stock_of_orders:
        for row in results[stock_at]:
            held.add(ProductRow(*row))
    return held
