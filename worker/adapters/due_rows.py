"""Queries that find rows due for a maintenance command, in keyset-paginated batches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

# served by ix_orders_status_created_at (status, created_at DESC, id DESC), scanned backwards
_UNPAID_ORDERS = text(
    """
    SELECT created_at, id, order_number FROM orders
    WHERE status = 'placed'
      AND created_at < now() - make_interval(secs => :older_than)
      AND (CAST(:after_created AS timestamptz) IS NULL
           OR (created_at, id) > (CAST(:after_created AS timestamptz), :after_id))
    ORDER BY created_at, id
    LIMIT :limit
    """
)


def unpaid_orders(
    connection: Connection, older_than_seconds: float, after: tuple[Any, ...] | None, limit: int
) -> list[tuple[tuple[Any, ...], str]]:
    """((created_at, id), order_number) of placed orders older than the window."""
    after_created, after_id = after if after else (None, 0)
    rows = connection.execute(
        _UNPAID_ORDERS,
        {
            "older_than": older_than_seconds,
            "after_created": after_created,
            "after_id": after_id,
            "limit": limit,
        },
    )
    return [((created_at, id_), number) for created_at, id_, number in rows]
