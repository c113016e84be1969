"""Read-side helpers: a Reader on the test engine, and paging through every page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from orderq.read import Page


def all_pages(fetch: Callable[[str | None], Page], limit_pages: int = 10_000) -> list[dict]:
    """Every result of a listing, following next_cursor to the end."""
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(limit_pages):
        page = fetch(cursor)
        seen += page.results
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("the listing never ended")


def soft_delete(engine: Engine, table: str, column: str, values: list[str]) -> None:
    """Withdraw rows (deleted_at = now()): search skips them, history keeps them."""
    with engine.begin() as connection:
        connection.execute(
            text(f"UPDATE {table} SET deleted_at = now() WHERE {column} = ANY(:values)"),
            {"values": values},
        )
