"""The read side: search, keyset listings and reports, JSON-ready, for the CLI and HTTP.

    from orderq.read import Reader

    reader = Reader.from_settings(engine, settings)
    page = reader.search_works("harry poter", limit=10)
    page.as_dict()  # {"results": [{"work": ..., "title": ..., ...}], "next_cursor": "..."}
    reader.search_works("harry poter", limit=10, cursor=page.next_cursor)

Every method returns a `Page` (results as JSON-ready dicts, an opaque cursor for the
next page or None) and raises `ReadError` (`InvalidQuery`, `InvalidCursor`) for bad
input — a 400 over HTTP, exit 2 on the CLI — never for a server fault. One module per
concern: works, members, customers, products, orders, loans, ledger; each names the index
that serves each of its statements (README: "Read queries and their indexes").
"""

from orderq.read.errors import InvalidCursor, InvalidQuery, ReadError
from orderq.read.pages import DEFAULT_LIMIT, MAX_LIMIT, Page
from orderq.read.reader import Reader

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "InvalidCursor",
    "InvalidQuery",
    "Page",
    "ReadError",
    "Reader",
]
