"""The request headers that steer intake: `Idempotency-Key` and `Prefer: wait=N`.

Keys are scoped per client by namespacing: the key `web-42` of client `shop` is stored
as `@shop/web-42` in the ledger, the delivery log and the business rows' idempotency
keys. The worker's exactly-once machinery sees an ordinary key and needs no client
column; the HTTP layer adds the namespace on the way in and strips it on the way out,
so two clients using the same key string never see or replay each other's outcome.
Keys published straight to the broker (the Python publisher, any Celery client) are
in no namespace: those producers are trusted infrastructure, and keys starting with
`@` are reserved for the HTTP intake.
"""

from __future__ import annotations

import re

MAX_HTTP_KEY_LENGTH = 255
NAMESPACE_MARK = "@"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class BadIdempotencyKey(ValueError):
    """The header is missing or malformed (the message says how)."""


def parse_idempotency_key(header: str | None) -> str:
    """The key from an `Idempotency-Key` header value.

    The draft defines the value as a Structured Field string (`"8e03978e-…"`); the bare
    form (`8e03978e-…`) is accepted too, as most clients send it. Either way the key
    is 1-255 visible ASCII characters (no spaces).
    """
    if header is None or header == "":
        raise BadIdempotencyKey("the Idempotency-Key header is required on every POST")
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _unquote(value[1:-1])
    if not _KEY.fullmatch(value):
        raise BadIdempotencyKey(
            f"Idempotency-Key must be 1-{MAX_HTTP_KEY_LENGTH} visible ASCII characters "
            f"(no spaces or control characters), got {len(value)} characters"
            + ("" if value.isascii() else " with non-ASCII ones")
        )
    return value


def _unquote(inner: str) -> str:
    """An sf-string's content: only `\\"` and `\\\\` are escapes."""
    out, escaped = [], False
    for char in inner:
        if escaped:
            if char not in '"\\':
                raise BadIdempotencyKey('Idempotency-Key: only \\" and \\\\ may be escaped')
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            raise BadIdempotencyKey('Idempotency-Key: a quote inside the string must be \\"')
        else:
            out.append(char)
    if escaped:
        raise BadIdempotencyKey("Idempotency-Key: the string ends in a lone backslash")
    return "".join(out)


def scoped_key(client: str, key: str) -> str:
    """The key as stored: in the client's namespace."""
    return f"{NAMESPACE_MARK}{client}/{key}"


def client_key(client: str, stored: str) -> str:
    """The key as the client sent it."""
    return stored.removeprefix(f"{NAMESPACE_MARK}{client}/")


def requested_wait(prefer_headers: list[str], cap: float) -> float:
    """Seconds to wait for the outcome, from `Prefer: wait=N` (RFC 7240), capped.

    Preferences are hints: an unknown or malformed one is ignored (0: do not wait).
    """
    wait = 0.0
    for header in prefer_headers:
        for preference in header.split(","):
            token = preference.split(";", 1)[0].strip()
            name, _, value = token.partition("=")
            if name.strip().lower() != "wait":
                continue
            value = value.strip().strip('"')
            if value.isdigit():
                wait = float(int(value[:12]))
    return min(wait, cap)
