"""Orders on the read side: a customer's orders, and the hot report.

- a customer's orders: `ix_orders_customer_ref_created_at` (customer_ref,
  created_at DESC, id DESC), keyset on (created_at, id);
- the hot report — orders in a status and a date range with the totals of their items,
  above a threshold, newest first: `ix_orders_status_created_at` (status,
  created_at DESC, id DESC) walks the orders in report order, each order's items come
  from `uq_order_items_order_id_product_id` (order_id leads, summed per order with
  HAVING), so LIMIT stops the walk; keyset on (created_at, id).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from orderq.read.cursors import CursorCodec
from orderq.read.errors import InvalidQuery
from orderq.read.keyset import Listing, fetch_page, newest_first
from orderq.read.pages import Page, checked_window

ORDER_STATUSES = ("placed", "paid", "shipped", "cancelled")

OF_CUSTOMER = Listing("orders_of_customer", ("created_at", "id"), (datetime, int))
_OF_CUSTOMER = """
    SELECT o.id, o.created_at, o.order_number, o.status, o.total_cents
    FROM orders o
    WHERE o.customer_ref = :customer {after}
    ORDER BY o.created_at DESC, o.id DESC
    LIMIT :limit
"""
_KEY = (("o.created_at", "created_at"), ("o.id", "id"))
OF_CUSTOMER_STATEMENTS = tuple(text(sql) for sql in newest_first(_OF_CUSTOMER, _KEY))


def orders_of_customer(
    connection: Connection, codec: CursorCodec, customer_ref: str, limit: int, cursor: str | None
) -> Page:
    """A customer's orders, newest first."""
    filters = {"customer": customer_ref.strip()}
    return fetch_page(
        connection, codec, OF_CUSTOMER, OF_CUSTOMER_STATEMENTS, filters, limit, cursor
    )


REPORT = Listing("orders_over_total", ("created_at", "id"), (datetime, int))
# The items are aggregated per order in a LATERAL subquery whose HAVING drops the
# orders at or below the threshold: the orders come from the index already in report
# order (no sort), each order's items from the order_items unique index, and LIMIT
# stops the walk — a whole-range GROUP BY would aggregate every order of the range
# (hash join over all items) before the first row could be returned.
_REPORT = """
    SELECT o.id, o.created_at, o.order_number, o.customer_ref, o.status,
           t.lines, t.units, t.items_total_cents
    FROM orders o
    CROSS JOIN LATERAL (
        SELECT count(*) AS lines, sum(i.qty) AS units, sum(i.line_total_cents) AS items_total_cents
        FROM order_items i
        WHERE i.order_id = o.id
        HAVING sum(i.line_total_cents) > :min_total_cents
    ) t
    WHERE o.status = :status AND o.created_at >= :since AND o.created_at < :until {after}
    ORDER BY o.created_at DESC, o.id DESC
    LIMIT :limit
"""
REPORT_STATEMENTS = tuple(text(sql) for sql in newest_first(_REPORT, _KEY))


def orders_over_total(
    connection: Connection,
    codec: CursorCodec,
    status: str,
    since: datetime,
    until: datetime,
    min_total_cents: int,
    limit: int,
    cursor: str | None,
) -> Page:
    """Orders in `status` created in [since, until) whose items total more than
    `min_total_cents`, newest first, with their lines, units and items' total."""
    if status not in ORDER_STATUSES:
        raise InvalidQuery(f"status {status!r}: expected one of {', '.join(ORDER_STATUSES)}")
    checked_window(since, until)
    if min_total_cents < 0:
        raise InvalidQuery("the minimum total cannot be negative")
    filters = {
        "status": status,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "min_total_cents": min_total_cents,
    }
    params = {"since": since, "until": until}
    return fetch_page(connection, codec, REPORT, REPORT_STATEMENTS, filters, limit, cursor, params)
