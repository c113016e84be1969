"""Keyset pagination shared by every listing: one statement for the first page, one for
the pages after a cursor, one extra row fetched to know whether another page exists.

Every page costs the same however deep it is: the cursor is the sort key of the last
row shown, and the next page starts right after it in the index that serves the
listing (no OFFSET). Rows inserted meanwhile land before or after the cursor; none is
shown twice, and every row that existed when paging began is shown once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause

from orderq.read.cursors import CursorCodec, KeyType
from orderq.read.pages import Page, checked_limit, json_ready


@dataclass(frozen=True)
class Listing:
    """A paged query: its name (cursors are scoped to it), the columns of its sort key
    (in result rows, bound as `:after_<column>`), their types, and the result columns
    that exist only for paging."""

    name: str
    key: tuple[str, ...]
    types: tuple[KeyType, ...]
    hidden: tuple[str, ...] = ("id",)


def fetch_page(
    connection: Connection,
    codec: CursorCodec,
    listing: Listing,
    statements: tuple[TextClause, TextClause],
    filters: Mapping[str, Any],
    limit: int,
    cursor: str | None,
    params: Mapping[str, Any] | None = None,
) -> Page:
    """Run the first-page statement (no cursor) or the after-cursor one; return a Page."""
    first, after = statements
    bound: dict[str, Any] = {**filters, **(params or {}), "limit": checked_limit(limit) + 1}
    statement = first
    if cursor is not None:
        values = codec.decode(cursor, listing.name, dict(filters), listing.types)
        bound.update(
            {f"after_{column}": value for column, value in zip(listing.key, values, strict=True)}
        )
        statement = after
    rows = connection.execute(statement, bound).mappings().all()
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        next_cursor = codec.encode(listing.name, dict(filters), [last[k] for k in listing.key])
    return Page(
        [json_ready({k: v for k, v in row.items() if k not in listing.hidden}) for row in shown],
        next_cursor,
    )


def newest_first(
    template: str, columns: Sequence[tuple[str, str]] = (("created_at", "created_at"), ("id", "id"))
) -> tuple[str, str]:
    """(first, after) SQL for a listing ordered by `columns` (SQL expression, key name)
    descending: `{after}` in `template` becomes nothing, or
    `AND (expr_a, expr_b) < (:after_a, :after_b)`."""
    expressions = ", ".join(expression for expression, _ in columns)
    params = ", ".join(f":after_{name}" for _, name in columns)
    return template.format(after=""), template.format(after=f"AND ({expressions}) < ({params})")
