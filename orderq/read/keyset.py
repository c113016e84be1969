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
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, TextClause

from orderq.read.cursors import CursorCodec, KeyType
from orderq.read.errors import InvalidQuery
from orderq.read.pages import Page, checked_limit, checked_window, json_ready


@dataclass(frozen=True)
class Listing:
    """A paged query: its name (cursors are scoped to it), the columns of its sort key
    (in result rows, bound as `:after_<column>`), their types, and the result columns
    that exist only for paging."""

    name: str
    key: tuple[str, ...]
    types: tuple[KeyType, ...]
    hidden: tuple[str, ...] = ("id",)


@dataclass(frozen=True)
class Window:
    """The time window [since, until) of a listing, as asked for: an end left out is
    resolved on the first page (`until`: now; `since`: `days` before `until`) and the
    resolved window travels in the cursor, so the next page continues the same window
    rather than one that moved with the clock (which would skip or refuse rows)."""

    since: datetime | None = None
    until: datetime | None = None
    days: float = 1.0

    #: what a cursor adds to its row key: the resolved window
    TYPES = (datetime, datetime)

    def filters(self) -> dict[str, Any]:
        """The window as asked, for the cursor's scope (a cursor continues only a page of
        the same request)."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "days": self.days if self.since is None else None,
        }

    def resolved(self) -> tuple[datetime, datetime]:
        """[since, until) for a first page; `InvalidQuery` for an empty or naive one."""
        for end in (self.since, self.until):
            if end is not None and end.tzinfo is None:
                raise InvalidQuery("since and until need a time zone")
        if not 0 < self.days <= 36_600:
            raise InvalidQuery("the window must be more than 0 and at most 36600 days")
        until = self.until or datetime.now(UTC)
        try:
            since = self.since or until - timedelta(days=self.days)
        except OverflowError:
            raise InvalidQuery("until is too early to count the window back from") from None
        checked_window(since, until)
        return since, until


def fetch_page(
    connection: Connection,
    codec: CursorCodec,
    listing: Listing,
    statements: tuple[TextClause, TextClause],
    filters: Mapping[str, Any],
    limit: int,
    cursor: str | None,
    params: Mapping[str, Any] | None = None,
    window: Window | None = None,
) -> Page:
    """Run the first-page statement (no cursor) or the after-cursor one; return a Page.

    With a `window`, its ends are bound as `:since` and `:until`: resolved for a first
    page, read back from the cursor for the next ones."""
    first, after = statements
    limit = checked_limit(limit)
    bound: dict[str, Any] = {**filters, **(params or {}), "limit": limit + 1}
    scope = {**filters, **(window.filters() if window else {})}
    types = (*listing.types, *(Window.TYPES if window else ()))
    statement = first
    values: tuple[Any, ...] = ()
    if cursor is not None:
        values = codec.decode(cursor, listing.name, scope, types)
        bound.update(
            {f"after_{column}": value for column, value in zip(listing.key, values, strict=False)}
        )
        statement = after
    carried: tuple[Any, ...] = ()
    if window is not None:
        carried = values[len(listing.key) :] or window.resolved()
        bound.update(since=carried[0], until=carried[1])
    rows = connection.execute(statement, bound).mappings().all()
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        key = [last[k] for k in listing.key]
        next_cursor = codec.encode(listing.name, scope, [*key, *carried])
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
