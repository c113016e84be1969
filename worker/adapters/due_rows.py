"""Queries that find rows due for a maintenance command, in keyset-paginated batches."""

from __future__ import annotations

from datetime import UTC, datetime
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


#: Where a keyset scan starts: before every real timestamp.
_BEGINNING = (datetime(1, 1, 1, tzinfo=UTC), 0)

# served by ix_reservations_ready_until (ready_until, id) WHERE status = 'ready': an index
# range scan from the cursor, stopping at now()
EXPIRED_HOLDS_SQL = text(
    """
    SELECT ready_until, id FROM reservations
    WHERE status = 'ready'
      AND ready_until < now()
      AND (ready_until, id) > (:after_until, :after_id)
    ORDER BY ready_until, id
    LIMIT :limit
    """
)

# served by ix_loans_due_at_unmarked (due_at, id) WHERE returned_at IS NULL AND
# overdue_at IS NULL: an index range scan from the cursor, stopping at now()
UNMARKED_OVERDUE_LOANS_SQL = text(
    """
    SELECT due_at, id FROM loans
    WHERE returned_at IS NULL
      AND overdue_at IS NULL
      AND due_at < now()
      AND (due_at, id) > (:after_due, :after_id)
    ORDER BY due_at, id
    LIMIT :limit
    """
)


def expired_holds(
    connection: Connection, after: tuple[Any, ...] | None, limit: int
) -> list[tuple[datetime, int]]:
    """(ready_until, id) of ready reservations past their deadline, after the cursor.

    The pair is also the keyset cursor of the row.
    """
    after_until, after_id = after or _BEGINNING
    rows = connection.execute(
        EXPIRED_HOLDS_SQL, {"after_until": after_until, "after_id": after_id, "limit": limit}
    )
    return [(ready_until, id_) for ready_until, id_ in rows]


def unmarked_overdue_loans(
    connection: Connection, after: tuple[Any, ...] | None, limit: int
) -> list[tuple[datetime, int]]:
    """(due_at, id) of active loans past due and not marked overdue, after the cursor.

    The pair is also the keyset cursor of the row.
    """
    after_due, after_id = after or _BEGINNING
    rows = connection.execute(
        UNMARKED_OVERDUE_LOANS_SQL, {"after_due": after_due, "after_id": after_id, "limit": limit}
    )
    return [(due_at, id_) for due_at, id_ in rows]
