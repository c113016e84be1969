"""Read-side queries on orders: one order, a keyset page, and the status report.

Each query is shaped for an index: the pages and the report all read
`ix_orders_status_created_at (status, created_at DESC, id DESC)` — the page across
every status too, as one short index range per status, merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from worker.domain.orders import OrderStatus

_ORDER = text(
    """
    SELECT o.order_number, o.customer_ref, o.status, o.total_cents, o.created_at,
           o.idempotency_key
    FROM orders o WHERE o.order_number = :number
    """
)
_ITEMS = text(
    """
    SELECT i.sku, i.qty, i.unit_price_cents, i.line_total_cents
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE o.order_number = :number ORDER BY i.id
    """
)
# Keyset pagination: the cursor is the (created_at, id) of the last row of the previous
# page, so every page costs the same however deep it is. Two statements rather than an
# `OR :cursor IS NULL`, which would keep the planner from using the index bound.
_PAGE_SELECT = """
    SELECT id, order_number, customer_ref, status, total_cents, created_at
    FROM orders
    WHERE status = :status {after}
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
"""
_AFTER = "AND (created_at, id) < (:after_created, :after_id)"
_FIRST_PAGE = text(_PAGE_SELECT.format(after=""))
_NEXT_PAGE = text(_PAGE_SELECT.format(after=_AFTER))
# Every status, newest first: the index leads with status, so it cannot be read in
# created_at order across statuses. Instead each status's range is read (at most `limit`
# rows each, from the cursor on) and the few rows merged: the cost stays that of
# len(OrderStatus) short index scans however deep the page, with no second index for
# every order write to maintain.
_ALL_PAGE_SELECT = """
    SELECT page.* FROM unnest(CAST(:statuses AS text[])) AS wanted(status)
    CROSS JOIN LATERAL (
        SELECT id, order_number, customer_ref, status, total_cents, created_at
        FROM orders
        WHERE status = wanted.status {after}
        ORDER BY created_at DESC, id DESC
        LIMIT :limit
    ) AS page
    ORDER BY page.created_at DESC, page.id DESC
    LIMIT :limit
"""
FIRST_PAGE_ALL_STATUSES = text(_ALL_PAGE_SELECT.format(after=""))
NEXT_PAGE_ALL_STATUSES = text(_ALL_PAGE_SELECT.format(after=_AFTER))
_REPORT = text(
    """
    SELECT count(*) AS orders, coalesce(sum(total_cents), 0) AS total_cents
    FROM orders
    WHERE status = :status AND created_at >= :since AND created_at < :until
    """
)


@dataclass(frozen=True)
class OrderPage:
    """One page of orders and the cursor for the next one (None at the end)."""

    orders: list[dict[str, Any]]
    next_cursor: str | None


def find_order(engine: Engine, order_number: str) -> dict[str, Any] | None:
    """One order with its lines, or None."""
    with engine.connect() as connection:
        row = connection.execute(_ORDER, {"number": order_number}).mappings().one_or_none()
        if row is None:
            return None
        items = connection.execute(_ITEMS, {"number": order_number}).mappings().all()
    return {**row, "lines": [dict(item) for item in items]}


def encode_cursor(created_at: datetime, order_id: int) -> str:
    return f"{created_at.isoformat()}~{order_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raise ValueError for a cursor this module did not produce."""
    created, sep, order_id = cursor.rpartition("~")
    if not sep:
        raise ValueError(f"bad cursor {cursor!r}")
    return datetime.fromisoformat(created), int(order_id)


def page_orders(
    engine: Engine, status: str | None, limit: int, cursor: str | None = None
) -> OrderPage:
    """Orders in `status` (None: every status), newest first, `limit` at a time."""
    params: dict[str, Any] = {"limit": limit}
    if status is None:
        params["statuses"] = [str(s) for s in OrderStatus]
        statement = NEXT_PAGE_ALL_STATUSES if cursor else FIRST_PAGE_ALL_STATUSES
    else:
        params["status"] = status
        statement = _NEXT_PAGE if cursor else _FIRST_PAGE
    if cursor:
        params["after_created"], params["after_id"] = decode_cursor(cursor)
    with engine.connect() as connection:
        rows = connection.execute(statement, params).mappings().all()
    orders = [{k: v for k, v in row.items() if k != "id"} for row in rows]
    next_cursor = (
        encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    )
    return OrderPage(orders, next_cursor)


def status_report(
    engine: Engine, statuses: list[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Number of orders and their total per status, created in [since, until)."""
    with engine.connect() as connection:
        return [
            {
                "status": status,
                **connection.execute(_REPORT, {"status": status, "since": since, "until": until})
                .mappings()
                .one(),
            }
            for status in statuses
        ]
