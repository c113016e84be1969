"""The shop: products, customers, orders with their items, stock movements and ledger
rows — consistent by construction:

- every order line reserves stock (a `reserve` movement); a shipped order's lines
  leave stock (`ship`: on_hand and reserved down), a cancelled order's are released;
- each product gets one `restock` movement, early in the history, of what its orders
  needed plus a margin, and its stock row is the sum of its movements — so
  on_hand >= reserved >= 0 and stock reconciles with the movement history;
- an order's total is the sum of its lines (line total = qty * unit price);
- orders placed in the last day may still be placed/paid; older ones are shipped,
  cancelled or (a few) paid — maintenance would have expired older unpaid ones;
- the ledger holds each order's place_order outcome with the fingerprint of the very
  command body (a redelivery would replay it), and some rejected place_orders.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orderq.seed.names import Names
from orderq.seed.plan import SeedPlan
from producers.commands import fingerprint_of
from worker.domain.contacts import phone_key

PRODUCT_COLUMNS = ("id", "sku", "name", "price_cents", "created_at", "updated_at")
CUSTOMER_COLUMNS = ("customer_ref", "name", "email", "phone", "phone_digits", "created_at")
ORDER_COLUMNS = (
    "id",
    "order_number",
    "idempotency_key",
    "customer_ref",
    "status",
    "total_cents",
    "created_at",
    "updated_at",
)
ITEM_COLUMNS = ("order_id", "product_id", "sku", "qty", "unit_price_cents", "line_total_cents")
MOVEMENT_COLUMNS = (
    "product_id",
    "order_id",
    "on_hand_delta",
    "reserved_delta",
    "reason",
    "command_key",
    "created_at",
)
STOCK_COLUMNS = ("product_id", "on_hand", "reserved")
LEDGER_COLUMNS = (
    "idempotency_key",
    "command_type",
    "fingerprint",
    "status",
    "result",
    "reason",
    "created_at",
    "completed_at",
)


@dataclass
class Shop:
    """What the shop's generators share: ids to start from, products, demand so far."""

    plan: SeedPlan
    rng: random.Random
    names: Names
    first_product_id: int
    first_order_id: int
    first_order_number: int
    phone_region: str | None
    prices: list[int] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    # per product: units reserved by open orders, units shipped
    reserved: list[int] = field(default_factory=list)
    shipped: list[int] = field(default_factory=list)

    @property
    def start(self) -> datetime:
        return self.plan.when() - timedelta(days=self.plan.history_days)

    def customer_ref(self, n: int) -> str:
        return f"seed{self.plan.seed}-c{n:06d}"

    # -- products and customers -----------------------------------------------------------

    def products(self) -> Iterator[tuple[Any, ...]]:
        for n in range(self.plan.products):
            sku = f"{self.plan.tag}-P{n:06d}"
            price = self.rng.choice((199, 450, 899, 1250, 1999, 2500, 4999, 7900, 12900))
            self.skus.append(sku)
            self.prices.append(price)
            self.reserved.append(0)
            self.shipped.append(0)
            yield (
                self.first_product_id + n,
                sku,
                self.names.product(),
                price,
                self.start,
                self.start,
            )

    def customers(self) -> Iterator[tuple[Any, ...]]:
        for n in range(self.plan.customers):
            name = self.names.person()
            email = self.names.email(name, n) if self.rng.random() < 0.9 else None
            phone = self.names.phone() if self.rng.random() < 0.7 else None
            digits = phone_key(phone, self.phone_region)
            yield (self.customer_ref(n), name, email, phone, digits, self.start)

    # -- orders, items, movements, ledger (one chunk at a time) -----------------------------

    def order_chunk(self, first: int, count: int) -> dict[str, list[tuple[Any, ...]]]:
        rows: dict[str, list[tuple[Any, ...]]] = {
            "orders": [],
            "items": [],
            "movements": [],
            "ledger": [],
        }
        anchor = self.plan.when()
        span = (anchor - self.start).total_seconds()
        for n in range(first, first + count):
            order_id = self.first_order_id + n
            number = f"ORD-{self.first_order_number + n:06d}"
            key = f"seed{self.plan.seed}-order-{n}"
            created = self.start + timedelta(
                seconds=span * (n + self.rng.random()) / self.plan.orders
            )
            status = self._status(anchor - created)
            customer = self.customer_ref(self.rng.randrange(self.plan.customers))
            lines = self._lines()
            total = 0
            body_lines = []
            for product, qty in lines:
                price = self.prices[product]
                total += qty * price
                sku = self.skus[product]
                body_lines.append({"sku": sku, "qty": qty})
                rows["items"].append(
                    (order_id, self.first_product_id + product, sku, qty, price, qty * price)
                )
                pid = self.first_product_id + product
                rows["movements"].append((pid, order_id, 0, qty, "reserve", key, created))
                if status == "shipped":
                    shipped_at = min(created + timedelta(days=2), anchor)
                    rows["movements"].append(
                        (pid, order_id, -qty, -qty, "ship", f"{key}:ship", shipped_at)
                    )
                    self.shipped[product] += qty
                elif status == "cancelled":
                    cancelled_at = min(created + timedelta(hours=6), anchor)
                    rows["movements"].append(
                        (pid, order_id, 0, -qty, "release", f"{key}:cancel", cancelled_at)
                    )
                else:
                    self.reserved[product] += qty
            rows["orders"].append(
                (order_id, number, key, customer, status, total, created, created)
            )
            body = {"type": "place_order", "customer_ref": customer, "lines": body_lines}
            result = (
                f'{{"order_number": "{number}", "total_cents": {total}, "lines": {len(lines)}}}'
            )
            rows["ledger"].append(
                (
                    key,
                    "place_order",
                    fingerprint_of(body),
                    "succeeded",
                    result,
                    None,
                    created,
                    created,
                )
            )
            if self.rng.random() < 0.03:  # a refused order: the ledger keeps the rejection
                refused = {"type": "place_order", "customer_ref": customer, "lines": body_lines}
                rows["ledger"].append(
                    (
                        f"{key}-refused",
                        "place_order",
                        fingerprint_of({**refused, "refused": True}),
                        "rejected",
                        None,
                        "insufficient_stock",
                        created,
                        created,
                    )
                )
        return rows

    def _status(self, age: timedelta) -> str:
        roll = self.rng.random()
        if age < timedelta(days=1):
            return "placed" if roll < 0.6 else "paid" if roll < 0.9 else "cancelled"
        return "shipped" if roll < 0.72 else "cancelled" if roll < 0.92 else "paid"

    def _lines(self) -> list[tuple[int, int]]:
        count = self.rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
        products = self.rng.sample(range(self.plan.products), min(count, self.plan.products))
        return [
            (p, self.rng.choices((1, 2, 3, 5), weights=(70, 20, 7, 3))[0]) for p in sorted(products)
        ]

    # -- stock: the sum of the movements ---------------------------------------------------

    def restocks_and_levels(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """A restock movement per product (what its orders needed plus a margin) and the
        stock rows that equal the sum of every movement."""
        movements, levels = [], []
        for product in range(self.plan.products):
            pid = self.first_product_id + product
            margin = self.rng.randrange(5, 500)
            received = self.shipped[product] + self.reserved[product] + margin
            key = f"seed{self.plan.seed}-restock-{product}"
            movements.append((pid, None, received, 0, "restock", key, self.start))
            levels.append((pid, received - self.shipped[product], self.reserved[product]))
        return movements, levels
