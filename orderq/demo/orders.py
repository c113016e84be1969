"""The orders part of the demo: customers racing for scarce stock, producers that
publish twice, a key reused with a different payload, late retries of rejected
orders, invalid messages — then what happened, read back from the database."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from orderq.demo.scenario import (
    Check,
    DemoRun,
    Row,
    command_log,
    label,
    outcome_mismatches,
    rejections,
    repeat_deliveries,
)
from orderq.demo.waves import Delivery, Wave
from producers.commands import (
    CancelOrder,
    ConfirmPayment,
    OrderLine,
    PlaceOrder,
    RestockProduct,
    ShipOrder,
    UpsertProduct,
)

#: name -> (product name, price in cents, units received before the burst)
CATALOG = {
    "LAMP": ("Limited-edition lamp", 8900, 5),
    "MUG": ("Mug", 950, 12),
    "POSTER": ("Poster", 1500, 8),
}
CUSTOMERS = 40
LATE_LAMPS = 3


@dataclass
class OrdersScenario:
    """Deterministic for a given seed; keys and SKUs carry the run's tag."""

    run: DemoRun
    seed: int = 7
    burst: list[PlaceOrder] = field(default_factory=list)
    copies: dict[str, int] = field(default_factory=dict)
    resent_rejected: list[str] = field(default_factory=list)
    reused: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (first, second)

    title = "orders"

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        for number in range(1, CUSTOMERS + 1):
            wanted = rng.sample(["LAMP", "MUG", "POSTER"], k=rng.choice([1, 1, 2]))
            lines = [
                OrderLine(sku=self.run.sku(name), qty=rng.choice([1, 1, 2])) for name in wanted
            ]
            if number % 17 == 0:  # a product that does not exist
                lines = [OrderLine(sku=self.run.sku("GHOST"), qty=1)]
            order = PlaceOrder(
                key=self.run.key(f"order-{number:03}"),
                customer_ref=f"customer-{number:03}",
                lines=lines,
            )
            self.burst.append(order)
            # a producer that retries: some orders are published two or three times
            self.copies[order.key] = rng.choice([1, 1, 1, 2, 2, 3])

    # -- what is published ---------------------------------------------------------------

    def waves(self) -> Sequence[Wave]:
        return [
            Wave("catalog (upserts sent twice)", self._catalog),
            Wave("stock arrives", self._stock),
            Wave(f"{CUSTOMERS} customers race for scarce stock", self._burst),
            Wave("payments (webhooks sent twice)", self._payments),
            Wave("ship two, cancel two", self._ship_and_cancel),
            Wave(f"{LATE_LAMPS} more lamps arrive", self._late_stock),
            Wave("late retries, reused keys, bad messages", self._retries_and_mistakes),
        ]

    def _catalog(self, _: Connection) -> list[Delivery]:
        commands = [
            UpsertProduct(
                key=self.run.key(f"upsert-{name}"),
                sku=self.run.sku(name),
                name=title,
                price_cents=price,
            )
            for name, (title, price, _) in CATALOG.items()
        ]
        return [Delivery.of(c) for c in commands for _ in range(2)]

    def _stock(self, _: Connection) -> list[Delivery]:
        return [
            Delivery.of(
                RestockProduct(key=self.run.key(f"restock-{name}"), sku=self.run.sku(name), qty=qty)
            )
            for name, (_, _, qty) in CATALOG.items()
        ]

    def _burst(self, _: Connection) -> list[Delivery]:
        deliveries = [
            Delivery.of(order) for order in self.burst for _ in range(self.copies[order.key])
        ]
        random.Random(self.seed).shuffle(deliveries)  # duplicates arrive interleaved
        return deliveries

    def _orders(self, connection: Connection, status: str) -> list[str]:
        return list(
            connection.execute(
                text(
                    "SELECT order_number FROM orders WHERE idempotency_key LIKE :keys "
                    "AND status = :status ORDER BY id"
                ),
                {"keys": self.run.keys, "status": status},
            ).scalars()
        )

    def _payments(self, connection: Connection) -> list[Delivery]:
        to_pay = self._orders(connection, "placed")[:6]
        commands = [
            ConfirmPayment(key=self.run.key(f"pay-{number}"), order_number=number)
            for number in to_pay
        ]
        return [Delivery.of(c) for c in commands for _ in range(2)]

    def _ship_and_cancel(self, connection: Connection) -> list[Delivery]:
        ship = [
            ShipOrder(key=self.run.key(f"ship-{n}"), order_number=n)
            for n in self._orders(connection, "paid")[:2]
        ]
        cancel = [
            CancelOrder(key=self.run.key(f"cancel-{n}"), order_number=n)
            for n in self._orders(connection, "placed")[:2]
        ]
        return [Delivery.of(c) for c in [*ship, *cancel]]

    def _late_stock(self, _: Connection) -> list[Delivery]:
        return [
            Delivery.of(
                RestockProduct(
                    key=self.run.key("restock-LAMP-late"), sku=self.run.sku("LAMP"), qty=LATE_LAMPS
                )
            )
        ]

    def _retries_and_mistakes(self, connection: Connection) -> list[Delivery]:
        outcomes = {
            key: label(entry)
            for key, entry in command_log(connection)
            .decided_entries_like(self.run.key("order-%"))
            .items()
        }
        # Orders refused for lack of stock are re-sent after new stock arrived: their
        # stored rejection is replayed, they do not grab the new lamps.
        rejected = [o for o in self.burst if outcomes.get(o.key) == "insufficient_stock"][:6]
        self.resent_rejected = [o.key for o in rejected]
        # Keys that placed an order are reused for a different payload: refused.
        placed = [o for o in self.burst if outcomes.get(o.key) == "succeeded"][:3]
        changed = []
        for order in placed:
            first = order.lines[0]
            lines = (OrderLine(sku=first.sku, qty=first.qty + 1), *order.lines[1:])
            other = PlaceOrder(key=order.key, customer_ref=order.customer_ref, lines=lines)
            self.reused[order.key] = (order.fingerprint(), other.fingerprint())
            changed.append(other)
        invalid = [
            Delivery.raw(
                PlaceOrder.task_name,
                {
                    "type": "place_order",
                    "key": self.run.key("invalid-qty"),
                    "customer_ref": "customer-999",
                    "lines": [{"sku": self.run.sku("MUG"), "qty": 0}],
                },
            ),
            Delivery.raw(
                PlaceOrder.task_name,
                {"type": "place_order", "key": self.run.key("invalid-lines"), "customer_ref": "x"},
            ),
        ]
        return [*map(Delivery.of, rejected), *map(Delivery.of, changed), *invalid]

    # -- what happened, from the database ----------------------------------------------

    def _scalar(self, connection: Connection, sql: str, **params) -> int:
        params.setdefault("keys", self.run.keys)
        params.setdefault("skus", self.run.skus)
        return connection.execute(text(sql), params).scalar() or 0

    def summary(self, connection: Connection) -> Sequence[Row]:
        published = sum(self.copies.values())
        duplicates = published - len(self.burst)
        rows = [
            Row(
                "orders published in the burst",
                f"{published}",
                f"{len(self.burst)} orders + {duplicates} duplicates",
            ),
            Row(
                "orders placed",
                str(
                    self._scalar(
                        connection, "SELECT count(*) FROM orders WHERE idempotency_key LIKE :keys"
                    )
                ),
                "one per key",
            ),
        ]
        wanted = self._demanded()
        for sku, name, received, sold, available in connection.execute(
            text(
                """
                SELECT p.sku, p.name,
                       (SELECT coalesce(sum(m.on_hand_delta), 0) FROM stock_movements m
                        WHERE m.product_id = p.id AND m.reason = 'restock'),
                       (SELECT coalesce(sum(i.qty), 0) FROM order_items i
                        JOIN orders o ON o.id = i.order_id
                        WHERE i.product_id = p.id AND o.status <> 'cancelled'),
                       s.on_hand - s.reserved
                FROM products p JOIN stock_levels s ON s.product_id = p.id
                WHERE p.sku LIKE :skus ORDER BY p.id
                """
            ),
            {"skus": self.run.skus},
        ).all():
            rows.append(
                Row(
                    f"  {name}",
                    f"{sold} sold of {received}",
                    f"{wanted.get(sku, 0)} wanted · {available} left",
                )
            )
        by_status = connection.execute(
            text(
                "SELECT status, count(*) FROM orders WHERE idempotency_key LIKE :keys "
                "GROUP BY status ORDER BY status"
            ),
            {"keys": self.run.keys},
        ).all()
        rows.append(Row("  … by status now", "", ", ".join(f"{n} {s}" for s, n in by_status)))
        log = command_log(connection)
        decided = log.decided_entries_like(self.run.keys)
        for reason, count in rejections(decided):
            rows.append(Row(f"rejected: {reason}", str(count), REASON_NOTES.get(reason, "")))
        deliveries = log.delivery_counts_like(self.run.keys)
        taken = sum(deliveries.values())
        outcomes = len(decided)
        repeats = repeat_deliveries(deliveries)
        still_rejected, _ = self._resent_still_rejected(connection)
        rows += [
            Row(
                "rejected orders re-sent after new stock",
                f"{still_rejected} of {len(self.resent_rejected)}",
                "still rejected: replayed",
            ),
            Row(
                "keys reused with another payload",
                f"{self._reused_unchanged(connection)} of {len(self.reused)}",
                "refused; first order stands",
            ),
            Row("deliveries taken by the workers", str(taken), "counted by the workers"),
            Row("commands with a stored outcome", str(outcomes), "one ledger row per key"),
            Row(
                "repeat deliveries answered from the ledger",
                str(repeats),
                "no second effect",
            ),
        ]
        return rows

    def checks(self, connection: Connection) -> Sequence[Check]:
        params = {"keys": self.run.keys, "skus": self.run.skus}
        negative = self._scalar(
            connection,
            "SELECT count(*) FROM stock_levels s JOIN products p ON p.id = s.product_id "
            "WHERE p.sku LIKE :skus "
            "AND (s.on_hand < 0 OR s.reserved < 0 OR s.reserved > s.on_hand)",
        )
        unreconciled = connection.execute(
            text(
                """
                SELECT p.sku, s.on_hand, s.reserved,
                       coalesce(sum(m.on_hand_delta), 0), coalesce(sum(m.reserved_delta), 0)
                FROM products p JOIN stock_levels s ON s.product_id = p.id
                LEFT JOIN stock_movements m ON m.product_id = p.id
                WHERE p.sku LIKE :skus
                GROUP BY p.sku, s.on_hand, s.reserved
                HAVING s.on_hand <> coalesce(sum(m.on_hand_delta), 0)
                    OR s.reserved <> coalesce(sum(m.reserved_delta), 0)
                """
            ),
            params,
        ).all()
        products = self._scalar(connection, "SELECT count(*) FROM products WHERE sku LIKE :skus")
        doubled = self._scalar(
            connection,
            "SELECT count(*) FROM (SELECT idempotency_key FROM orders "
            "WHERE idempotency_key LIKE :keys GROUP BY 1 HAVING count(*) > 1) d",
        )
        mismatched = outcome_mismatches(connection, self.run.keys, "orders")
        over_reserved = (
            connection.execute(
                text(
                    """
                SELECT p.sku FROM products p JOIN stock_levels s ON s.product_id = p.id
                WHERE p.sku LIKE :skus AND s.reserved <> (
                    SELECT coalesce(sum(i.qty), 0) FROM order_items i
                    JOIN orders o ON o.id = i.order_id
                    WHERE i.product_id = p.id AND o.status IN ('placed', 'paid'))
                """
                ),
                params,
            )
            .scalars()
            .all()
        )
        sold = dict(
            connection.execute(
                text(
                    """
                    SELECT p.sku, coalesce(sum(i.qty) FILTER (WHERE o.status <> 'cancelled'), 0)
                    FROM products p LEFT JOIN order_items i ON i.product_id = p.id
                    LEFT JOIN orders o ON o.id = i.order_id
                    WHERE p.sku LIKE :skus GROUP BY p.sku
                    """
                ),
                params,
            ).all()
        )
        received = dict(
            connection.execute(
                text(
                    "SELECT p.sku, coalesce(sum(m.on_hand_delta), 0) FROM products p "
                    "LEFT JOIN stock_movements m ON m.product_id = p.id AND m.reason = 'restock' "
                    "WHERE p.sku LIKE :skus GROUP BY p.sku"
                ),
                params,
            ).all()
        )
        demanded = self._demanded()
        lamp = self.run.sku("LAMP")
        still_rejected, resent_taken = self._resent_still_rejected(connection)
        reuse_kept = self._reused_unchanged(connection)
        return [
            Check(
                "stock never negative",
                negative == 0,
                f"{negative} bad rows of {products}",
            ),
            Check(
                "stock = sum of its movements",
                not unreconciled,
                f"{products - len(unreconciled)} of {products} reconcile",
            ),
            Check(
                "no oversell",
                all(sold.get(sku, 0) <= received.get(sku, 0) for sku in received),
                f"lamps: {demanded.get(lamp, 0)} wanted, {received.get(lamp, 0)} in, "
                f"{sold.get(lamp, 0)} sold",
            ),
            Check(
                "reserved = units of placed and paid orders",
                not over_reserved,
                "per product" if not over_reserved else f"differs for {', '.join(over_reserved)}",
            ),
            Check(
                "one order per key, none if rejected",
                doubled == 0 and mismatched == 0,
                f"{doubled} doubled, {mismatched} mismatched",
            ),
            Check(
                "rejections are replayed, never retried",
                still_rejected == len(self.resent_rejected) == resent_taken,
                f"{still_rejected} of {len(self.resent_rejected)} re-sent stay rejected",
            ),
            Check(
                "reused key, other payload: no change",
                reuse_kept == len(self.reused) > 0,
                f"{reuse_kept} of {len(self.reused)} keys unchanged",
            ),
        ]

    def _resent_still_rejected(self, connection: Connection) -> tuple[int, int]:
        """(re-sent rejected orders still rejected with no order, of them delivered twice)."""
        log = command_log(connection)
        decided = log.decided_entries(self.resent_rejected)
        with_orders = self._keys_with_orders(connection, self.resent_rejected)
        still_rejected = sum(
            entry.reason == "insufficient_stock" and key not in with_orders
            for key, entry in decided.items()
        )
        delivered = log.delivery_counts(self.resent_rejected)
        delivered_again = sum(count > 1 for count in delivered.values())
        return still_rejected, delivered_again

    def _keys_with_orders(self, connection: Connection, keys: Sequence[str]) -> Counter[str]:
        """How many orders each of `keys` created."""
        return Counter(
            connection.execute(
                text("SELECT idempotency_key FROM orders WHERE idempotency_key = ANY(:keys)"),
                {"keys": list(keys)},
            ).scalars()
        )

    def _reused_unchanged(self, connection: Connection) -> int:
        """Reused keys whose ledger still holds the first payload's fingerprint, with
        exactly one order, though the second payload was delivered too."""
        log = command_log(connection)
        keys = list(self.reused)
        decided = log.decided_entries(keys)
        deliveries = log.delivery_counts(keys)
        orders = self._keys_with_orders(connection, keys)
        unchanged = 0
        for key, (first, second) in self.reused.items():
            entry = decided.get(key)
            if (
                entry is not None
                and entry.fingerprint == first != second
                and orders[key] == 1
                and deliveries.get(key, 0) > 1
            ):
                unchanged += 1
        return unchanged

    def _demanded(self) -> dict[str, int]:
        wanted: dict[str, int] = {}
        for order in self.burst:
            for line in order.lines:
                wanted[line.sku] = wanted.get(line.sku, 0) + line.qty
        return wanted


REASON_NOTES = {
    "insufficient_stock": "oversell refused",
    "unknown_sku": "no such product",
    "invalid_command": "malformed: field named",
    "invalid_order_transition": "e.g. ship unpaid",
    "idempotency_key_reused": "same key, different payload",
}
