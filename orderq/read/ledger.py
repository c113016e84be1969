"""The command ledger for operators: decided commands by outcome and time, newest first.

The statement lives with every other ledger statement in producers/command_log.py
(`CommandLog.ledger_page`); this module adds the bounds and the cursor. Served by
`ix_command_ledger_created_at`, walked backwards within the time window.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from orderq.read.cursors import CursorCodec
from orderq.read.errors import InvalidQuery
from orderq.read.keyset import Listing, Window
from orderq.read.pages import Page, checked_limit, json_ready
from producers.command_log import DECIDED, CommandLog

LISTING = Listing("ledger", ("created_at", "id"), (datetime, int))
STATUSES = tuple(str(status) for status in DECIDED)
#: the ledger's window when `since` is not given: the last day
LEDGER_DAYS = 1


def ledger_entries(
    connection: Connection,
    codec: CursorCodec,
    status: str,
    window: Window,
    limit: int,
    cursor: str | None,
) -> Page:
    """Commands decided as `status` (succeeded or rejected) and claimed in the window,
    newest first: key, type, reason, result, attempts, when."""
    if status not in STATUSES:
        raise InvalidQuery(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    limit = checked_limit(limit)
    filters = {"status": status, **window.filters()}
    types = (*LISTING.types, *Window.TYPES)
    if cursor is not None:
        created_at, row_id, since, until = codec.decode(cursor, LISTING.name, filters, types)
        after: tuple[datetime, int] | None = (created_at, row_id)
    else:
        (since, until), after = window.resolved(), None
    log = CommandLog(connection.connection.driver_connection)
    rows = log.ledger_page(status, since, until, limit + 1, after)
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = [shown[-1]["created_at"], shown[-1]["id"], since, until]
        next_cursor = codec.encode(LISTING.name, filters, last)
    hidden = ("id", "idempotency_key")
    results = [
        json_ready(
            {"key": row["idempotency_key"]} | {k: v for k, v in row.items() if k not in hidden}
        )
        for row in shown
    ]
    return Page(results, next_cursor)
