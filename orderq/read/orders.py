"""Orders on the read side — the one owner of every order read: one order, the orders
in a status (or every status), a customer's orders, the status totals and the hot
report. CLI (`orderq orders …`, `orderq list …`), HTTP (`GET /v1/orders…`) and the
benchmarks all read orders through here; every page has a signed cursor.

- one order: `uq_orders_order_number`, its lines from `uq_order_items_order_id_product_id`;
- orders in a status: `ix_orders_status_created_at` (status, created_at DESC, id DESC),
  keyset on (created_at, id); across every status as one short range of the same index
  per status, merged (no second index for every order write to maintain);
- status totals: `ix_orders_status_created_at`, one range per status;
- a customer's orders: `ix_orders_customer_ref_created_at` (customer_ref,
  created_at DESC, id DESC), keyset on (created_at, id);
- the hot report — orders in a status and a date range with the totals of their items,
  above a threshold, newest first: `ix_orders_status_created_at` walks the orders in
  report order, each order's items come from `uq_order_items_order_id_product_id`
  (order_id leads, summed per order with HAVING), so LIMIT stops the walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from orderq.read.cursors import CursorCodec
from orderq.read.errors import InvalidQuery
from orderq.read.keyset import Listing, Window, fetch_page, newest_first
from orderq.read.pages import Page, checked_identifier, checked_window, json_ready
from worker.domain.orders import OrderStatus

ORDER_STATUSES = tuple(str(status) for status in OrderStatus)
_KEY = (("o.created_at", "created_at"), ("o.id", "id"))

# -- one order ------------------------------------------------------------------------------

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


def find_order(connection: Connection, order_number: str) -> dict[str, Any] | None:
    """One order with its lines (times as datetimes), or None. It carries the
    `idempotency_key` of the place_order that made it: callers decide who may see it."""
    number = order_number.strip().upper()
    row = connection.execute(_ORDER, {"number": number}).mappings().one_or_none()
    if row is None:
        return None
    items = connection.execute(_ITEMS, {"number": number}).mappings().all()
    return {**row, "lines": [dict(item) for item in items]}


# -- orders in a status, or in every status ----------------------------------------------------

IN_STATUS = Listing("orders_in_status", ("created_at", "id"), (datetime, int))
_IN_STATUS = """
    SELECT o.id, o.order_number, o.customer_ref, o.status, o.total_cents, o.created_at
    FROM orders o
    WHERE o.status = :status {after}
    ORDER BY o.created_at DESC, o.id DESC
    LIMIT :limit
"""
IN_STATUS_STATEMENTS = tuple(text(sql) for sql in newest_first(_IN_STATUS, _KEY))
# Every status, newest first: the index leads with status, so it cannot be read in
# created_at order across statuses. Instead each status's range is read (at most
# `limit` rows each, from the cursor on) and the few rows merged: the cost stays that
# of len(OrderStatus) short index scans however deep the page.
_ALL_STATUSES = """
    SELECT page.* FROM unnest(CAST(:statuses AS text[])) AS wanted(status)
    CROSS JOIN LATERAL (
        SELECT o.id, o.order_number, o.customer_ref, o.status, o.total_cents, o.created_at
        FROM orders o
        WHERE o.status = wanted.status {after}
        ORDER BY o.created_at DESC, o.id DESC
        LIMIT :limit
    ) AS page
    ORDER BY page.created_at DESC, page.id DESC
    LIMIT :limit
"""
FIRST_PAGE_ALL_STATUSES, NEXT_PAGE_ALL_STATUSES = (
    text(sql) for sql in newest_first(_ALL_STATUSES, _KEY)
)


def checked_status(status: str | None) -> str | None:
    """`status` if it is an order status (None: every status), else `InvalidQuery`."""
    if status is not None and status not in ORDER_STATUSES:
        raise InvalidQuery(f"status {status!r}: expected one of {', '.join(ORDER_STATUSES)}")
    return status


def _in_status_filters(status: str | None) -> dict[str, Any]:
    return {"status": checked_status(status) or "*"}


def check_orders_cursor(codec: CursorCodec, status: str | None, cursor: str) -> None:
    """Raise `InvalidCursor` unless `cursor` continues `orders_in_status(status)`
    (no I/O: the CLI checks a typed cursor before it connects)."""
    codec.decode(cursor, IN_STATUS.name, _in_status_filters(status), IN_STATUS.types)


def orders_in_status(
    connection: Connection, codec: CursorCodec, status: str | None, limit: int, cursor: str | None
) -> Page:
    """Orders in `status` (None: every status), newest first."""
    filters = _in_status_filters(status)
    if status is None:
        statements = (FIRST_PAGE_ALL_STATUSES, NEXT_PAGE_ALL_STATUSES)
        params: dict[str, Any] = {"statuses": list(ORDER_STATUSES)}
    else:
        statements, params = IN_STATUS_STATEMENTS, {}
    return fetch_page(connection, codec, IN_STATUS, statements, filters, limit, cursor, params)


# -- orders and their value per status -----------------------------------------------------

_TOTALS = text(
    """
    SELECT count(*) AS orders, coalesce(sum(total_cents), 0) AS total_cents
    FROM orders
    WHERE status = :status AND created_at >= :since AND created_at < :until
    """
)


def totals_by_status(
    connection: Connection, since: datetime, until: datetime, statuses: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Number of orders and their total per status (default: every status), created in
    [since, until)."""
    checked_window(since, until)
    for status in statuses:
        checked_status(status)
    window = {"since": since, "until": until}
    return [
        json_ready(
            {
                "status": status,
                **connection.execute(_TOTALS, {"status": status, **window}).mappings().one(),
            }
        )
        for status in statuses or ORDER_STATUSES
    ]


# -- a customer's orders ----------------------------------------------------------------------

OF_CUSTOMER = Listing("orders_of_customer", ("created_at", "id"), (datetime, int))
_OF_CUSTOMER = """
    SELECT o.id, o.created_at, o.order_number, o.status, o.total_cents
    FROM orders o
    WHERE o.customer_ref = :customer {after}
    ORDER BY o.created_at DESC, o.id DESC
    LIMIT :limit
"""
OF_CUSTOMER_STATEMENTS = tuple(text(sql) for sql in newest_first(_OF_CUSTOMER, _KEY))


def orders_of_customer(
    connection: Connection, codec: CursorCodec, customer_ref: str, limit: int, cursor: str | None
) -> Page:
    """A customer's orders, newest first."""
    filters = {"customer": checked_identifier("customer reference", customer_ref)}
    return fetch_page(
        connection, codec, OF_CUSTOMER, OF_CUSTOMER_STATEMENTS, filters, limit, cursor
    )


# -- the hot report ---------------------------------------------------------------------------

REPORT = Listing("orders_over_total", ("created_at", "id"), (datetime, int))
#: the report's window when `since` is not given: the last week
REPORT_DAYS = 7
#: the largest threshold a report takes (a bigint, like the totals it compares with)
MAX_TOTAL_CENTS = 2**63 - 1
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
    window: Window,
    min_total_cents: int,
    limit: int,
    cursor: str | None,
) -> Page:
    """Orders in `status` created in the window whose items total more than
    `min_total_cents`, newest first, with their lines, units and items' total."""
    if status not in ORDER_STATUSES:
        raise InvalidQuery(f"status {status!r}: expected one of {', '.join(ORDER_STATUSES)}")
    if not 0 <= min_total_cents <= MAX_TOTAL_CENTS:
        raise InvalidQuery(f"the minimum total must be between 0 and {MAX_TOTAL_CENTS}")
    filters = {"status": status, "min_total_cents": min_total_cents}
    return fetch_page(
        connection, codec, REPORT, REPORT_STATEMENTS, filters, limit, cursor, window=window
    )
