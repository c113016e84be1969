"""Maps the plain domain classes onto the tables (SQLAlchemy imperative mapping).

The domain never imports SQLAlchemy; this module teaches SQLAlchemy about the domain.
Aggregate roots carry a `version` column as SQLAlchemy's `version_id_col`, so an
update from a stale read raises `StaleDataError` instead of overwriting silently.
"""

from __future__ import annotations

from sqlalchemy.orm import registry, relationship

from worker.adapters import tables
from worker.domain.loans import Copy, Loan, Member, Reservation, Work
from worker.domain.orders import Order, OrderItem, Product, StockLevel, StockMovement

mapper_registry = registry(metadata=tables.metadata)
_started = False


def start_mappers() -> None:
    """Map the domain classes once per process (idempotent)."""
    global _started
    if _started:
        return
    _started = True
    mapper_registry.map_imperatively(
        Product,
        tables.products,
        version_id_col=tables.products.c.version,
        properties={
            "stock": relationship(StockLevel, uselist=False, lazy="raise"),
        },
    )
    mapper_registry.map_imperatively(StockLevel, tables.stock_levels)
    mapper_registry.map_imperatively(OrderItem, tables.order_items)
    mapper_registry.map_imperatively(
        Order,
        tables.orders,
        version_id_col=tables.orders.c.version,
        eager_defaults=True,  # the order number comes from a sequence: read it back
        properties={
            "items": relationship(OrderItem, lazy="selectin", order_by=tables.order_items.c.id),
        },
    )
    mapper_registry.map_imperatively(
        StockMovement,
        tables.stock_movements,
        properties={"order": relationship(Order, lazy="raise")},
    )
    _map_loans()


def _map_loans() -> None:
    """Members, works, copies and loans are versioned; reservations change only under
    their work's (or held copy's) row lock, so they need no version of their own."""
    for cls, table in (
        (Member, tables.members),
        (Work, tables.works),
        (Copy, tables.copies),
        (Loan, tables.loans),
    ):
        mapper_registry.map_imperatively(cls, table, version_id_col=table.c.version)
    mapper_registry.map_imperatively(Reservation, tables.reservations)
