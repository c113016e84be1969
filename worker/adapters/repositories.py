"""Repositories: the queries the handlers run, each inside the unit of work's session."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, contains_eager

from worker.adapters import tables
from worker.domain.orders import Order, Product, StockLevel, StockMovement


@dataclass(frozen=True)
class LedgerEntry:
    """A committed outcome as stored in the ledger."""

    key: str
    command_type: str
    fingerprint: str
    status: str
    result: dict[str, Any] | None
    reason: str | None


class LedgerRepository:
    """Claims idempotency keys and records their outcome."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, key: str, command_type: str, fingerprint: str) -> LedgerEntry | None:
        """Insert the key's ledger row; return the existing entry if another got there first.

        If a concurrent transaction holds the same key uncommitted, the insert waits on
        the unique index until that transaction ends, then either claims the key (it
        rolled back) or sees its committed outcome.
        """
        claimed = self.session.execute(
            pg_insert(tables.command_ledger)
            .values(
                idempotency_key=key,
                command_type=command_type,
                fingerprint=fingerprint,
                status="processing",
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(tables.command_ledger.c.id)
        ).scalar()
        if claimed is not None:
            return None
        return self.find(key)

    def find(self, key: str) -> LedgerEntry | None:
        ledger = tables.command_ledger
        row = self.session.execute(
            select(
                ledger.c.idempotency_key,
                ledger.c.command_type,
                ledger.c.fingerprint,
                ledger.c.status,
                ledger.c.result,
                ledger.c.reason,
            ).where(ledger.c.idempotency_key == key)
        ).one_or_none()
        return LedgerEntry(*row) if row else None

    def record(
        self,
        key: str,
        status: str,
        result: dict[str, Any] | None,
        reason: str | None,
        attempts: int,
    ) -> None:
        ledger = tables.command_ledger
        self.session.execute(
            update(ledger)
            .where(ledger.c.idempotency_key == key)
            .values(
                status=status,
                result=result,
                reason=reason,
                attempts=max(attempts, 1),
                completed_at=func.now(),
            )
        )


class ProductRepository:
    """Products and their stock rows."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _locked_with_stock(self):  # type: ignore[no-untyped-def]
        return (
            select(Product)
            .join(Product.stock)
            .options(contains_eager(Product.stock))
            .order_by(tables.products.c.id)  # one global lock order: no deadlocks
            .with_for_update(of=tables.stock_levels)
        )

    def lock_by_skus(self, skus: Iterable[str]) -> dict[str, Product]:
        """Products for `skus` with their stock rows locked `FOR UPDATE`, in id order."""
        query = self._locked_with_stock().where(tables.products.c.sku.in_(list(skus)))
        return {product.sku: product for product in self.session.scalars(query)}

    def lock_stock(self, product_ids: Iterable[int]) -> dict[int, StockLevel]:
        """Stock rows of `product_ids`, locked `FOR UPDATE` in id order."""
        query = (
            select(StockLevel)
            .where(tables.stock_levels.c.product_id.in_(list(product_ids)))
            .order_by(tables.stock_levels.c.product_id)
            .with_for_update()
        )
        return {stock.product_id: stock for stock in self.session.scalars(query)}

    def ensure(self, sku: str, name: str, price_cents: int) -> tuple[Product, bool]:
        """The product for `sku`, locked, created with empty stock if it did not exist.

        `INSERT … ON CONFLICT DO NOTHING` makes two concurrent creations of one SKU
        safe: the second waits for the first and then finds its row.
        """
        new_id = self.session.execute(
            pg_insert(tables.products)
            .values(sku=sku, name=name, price_cents=price_cents)
            .on_conflict_do_nothing(index_elements=["sku"])
            .returning(tables.products.c.id)
        ).scalar()
        if new_id is not None:
            self.session.execute(insert(tables.stock_levels).values(product_id=new_id))
        product = self.lock_by_skus([sku])[sku]
        return product, new_id is not None

    def add_movements(self, movements: Iterable[StockMovement]) -> None:
        self.session.add_all(list(movements))


class OrderRepository:
    """Orders, looked up by their human-readable number."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, order: Order) -> None:
        self.session.add(order)

    def lock_by_number(self, order_number: str) -> Order | None:
        """The order with `order_number`, its row locked so transitions serialize."""
        query = (
            select(Order)
            .where(tables.orders.c.order_number == order_number)
            .with_for_update(of=tables.orders)
        )
        return self.session.scalars(query).one_or_none()

    def by_idempotency_key(self, key: str) -> Order | None:
        """The order created by the command with idempotency key `key`, if any."""
        query = select(Order).where(tables.orders.c.idempotency_key == key)
        return self.session.scalars(query).one_or_none()
