"""A page of results and the bounds every listing shares."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from orderq.read.errors import InvalidQuery

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_QUERY_LENGTH = 200
#: the longest identifier a listing takes (a customer reference has at most 100)
MAX_IDENTIFIER_LENGTH = 200


@dataclass(frozen=True)
class Page:
    """Up to `limit` results (JSON-ready dicts) and the cursor of the next page (None:
    this was the last one)."""

    results: list[dict[str, Any]]
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        """`{"results": [...], "next_cursor": ...}`: what the CLI's --json and the HTTP
        API print."""
        return {"results": self.results, "next_cursor": self.next_cursor}


def checked_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"page size must be between 1 and {MAX_LIMIT}, got {limit!r}")
    return limit


def checked_query(query: str) -> str:
    """The query with its runs of white space made one space; `InvalidQuery` when it is
    empty, too long or holds a control character."""
    text = " ".join((query or "").split())
    if not text:
        raise InvalidQuery("the search query is empty")
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"the search query is longer than {MAX_QUERY_LENGTH} characters")
    _no_control_characters("the search query", text)
    return text


def checked_identifier(what: str, value: str) -> str:
    """An identifier a listing is scoped to (a customer reference, a member number, a
    SKU), stripped; `InvalidQuery` when it is empty, too long or holds a control
    character (PostgreSQL text cannot hold NUL: refused here, not by the server)."""
    text = (value or "").strip()
    if not text:
        raise InvalidQuery(f"the {what} is empty")
    if len(text) > MAX_IDENTIFIER_LENGTH:
        raise InvalidQuery(f"the {what} is longer than {MAX_IDENTIFIER_LENGTH} characters")
    _no_control_characters(f"the {what}", text)
    return text


def _no_control_characters(what: str, text: str) -> None:
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise InvalidQuery(f"{what} holds a control character ({char!a})")


def checked_window(since: datetime, until: datetime) -> None:
    """[since, until) must be two aware moments, in order."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidQuery("since and until need a time zone")
    if since >= until:
        raise InvalidQuery("since must be before until")


def json_ready(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO 8601 strings, decimals as numbers; everything else as it is."""
    ready = {}
    for name, value in row.items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        ready[name] = value
    return ready


def like_prefix(text: str) -> str:
    """`text%` for LIKE, with LIKE's own wildcards in `text` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
