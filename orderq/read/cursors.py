"""Opaque keyset cursors: signed, scoped to one listing and its filters, strictly parsed.

A cursor carries the sort key of the last row of a page (e.g. its `created_at` and
`id`). It travels to a client and back, so it is checked before it touches a query:

    <payload>.<signature>      both base64url without padding
    payload   = JSON [version, listing, scope, key...]
    signature = HMAC-SHA256(secret, payload)[:16]

- `listing` names the query that issued it ("orders_of_customer", …) and `scope` is a
  digest of that query's filters (the customer, the status, the date range): a cursor
  from another listing, or from the same listing with other filters, is refused
  instead of silently returning someone else's page;
- an altered byte fails the signature; without ORDERQ_READ_CURSOR_SECRET the key is a
  fixed public one, so cursors are tamper-evident but forgeable — set the secret where
  cursors cross a trust boundary (the HTTP API);
- each key value is checked against the type the listing expects (an aware datetime,
  an integer, a float), so a well-signed but wrong-shaped cursor is refused too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orderq.read.errors import InvalidCursor

VERSION = 1
UNKEYED_SECRET = "orderq-read-cursor-unkeyed"
MAX_CURSOR_LENGTH = 1024
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,1000}\.[A-Za-z0-9_-]{22}$")

#: The types a cursor key may have: what `encode` writes and `decode` accepts.
KeyType = type[datetime] | type[int] | type[float] | type[str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def scope_of(filters: dict[str, Any]) -> str:
    """A short digest of a listing's filters (values as their JSON spelling)."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class CursorCodec:
    """Issues and checks the cursors of every listing, with one secret."""

    def __init__(self, secret: str | None = None) -> None:
        self._key = (secret or UNKEYED_SECRET).encode()

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest()[:16])

    def encode(self, listing: str, filters: dict[str, Any], key: Sequence[Any]) -> str:
        """The cursor that continues `listing` (with `filters`) after the row `key`."""
        values = [value.isoformat() if isinstance(value, datetime) else value for value in key]
        body = [VERSION, listing, scope_of(filters), *values]
        payload = json.dumps(body, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{self._sign(payload)}"

    def decode(
        self,
        cursor: str,
        listing: str,
        filters: dict[str, Any],
        types: Sequence[KeyType],
    ) -> tuple[Any, ...]:
        """The row key inside `cursor`, typed; `InvalidCursor` for anything else."""
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursor("the cursor is not one this listing issued (malformed)")
        if not _TOKEN.match(cursor):
            raise InvalidCursor("the cursor is not one this listing issued (malformed)")
        encoded, signature = cursor.split(".")
        try:
            payload = _unb64(encoded)
        except (binascii.Error, ValueError):
            raise InvalidCursor("the cursor is not one this listing issued (malformed)") from None
        if not hmac.compare_digest(self._sign(payload), signature):
            raise InvalidCursor("the cursor was altered or issued with another secret")
        try:
            body = json.loads(payload)
        except ValueError:
            raise InvalidCursor("the cursor is not one this listing issued (malformed)") from None
        if not isinstance(body, list) or len(body) != 3 + len(types) or body[0] != VERSION:
            raise InvalidCursor("the cursor is not one this listing issued (wrong shape)")
        if body[1] != listing:
            raise InvalidCursor(f"the cursor belongs to another listing ({body[1]!r})")
        if body[2] != scope_of(filters):
            raise InvalidCursor("the cursor belongs to the same listing with other filters")
        return tuple(_typed(value, kind) for value, kind in zip(body[3:], types, strict=True))


def _typed(value: Any, kind: KeyType) -> Any:
    if kind is datetime:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                return moment
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif kind is str and isinstance(value, str) and len(value) <= 500:
        return value
    raise InvalidCursor("the cursor is not one this listing issued (bad key value)")
