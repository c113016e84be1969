"""API keys of the HTTP service: every statement on `api_keys`, and how tokens are made.

A token is `oq_` + 43 URL-safe characters from `secrets` (256 random bits). Only its
SHA-256 is stored. A plain fast hash is enough here — unlike passwords, the token
has 256 bits of entropy, so a leaked hash cannot be brute-forced back into a token,
and a fast hash keeps authenticating every request to one indexed lookup. (A slow
password hash or a server-side pepper would add nothing but latency.) The token is
printed once, by `orderq api-keys create`; nobody can show it again.

A client's name scopes its idempotency keys (see orderq/http/idempotency.py): two
clients using the same key string never see each other's outcome. One client may
hold several keys (rotation: create the new one, move over, revoke the old one).
An *operator* key (`orderq api-keys create --client ops --operator`) may also read
operator data: the ledger of every client, every client's keys in listings
(docs/http.md, "Who may read what").
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from producers.database import autocommit

#: a client's name: lower-case letters, digits, '.', '_' or '-' (also a CHECK on the table)
CLIENT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
TOKEN_PREFIX = "oq_"
#: characters of the token kept in clear, to tell keys apart in listings
SHOWN_CHARACTERS = 8


class ApiKeyError(ValueError):
    """A client name or key reference that cannot be used (the message says why)."""


@dataclass(frozen=True)
class ApiKey:
    """One key as operators see it (never the token)."""

    id: int
    client: str
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None
    operator: bool = False

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client": self.client,
            "token_prefix": self.token_prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "operator": self.operator,
        }


@dataclass(frozen=True)
class Caller:
    """The authenticated upstream client behind a request's token."""

    client: str
    #: the key may read operator data (the ledger of every client)
    operator: bool = False


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: the stored record and the token (shown this once)."""

    key: ApiKey
    token: str


def token_digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_client_name(client: str) -> str:
    if not CLIENT_NAME.fullmatch(client):
        raise ApiKeyError(
            f"{client!r} is not a client name: 1-32 lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return client


_COLUMNS = "id, client, token_prefix, created_at, revoked_at, operator"
_CREATE = f"""
    INSERT INTO api_keys (client, token_prefix, token_sha256, operator) VALUES (%s, %s, %s, %s)
    RETURNING {_COLUMNS}
"""
_LIST = f"""
    SELECT {_COLUMNS} FROM api_keys
    WHERE (%(client)s::text IS NULL OR client = %(client)s)
      AND (%(revoked)s OR revoked_at IS NULL)
    ORDER BY client, id
"""
_REVOKE = f"""
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
    WHERE id = %s RETURNING {_COLUMNS}
"""
_AUTHENTICATE = (
    "SELECT client, operator FROM api_keys WHERE token_sha256 = %s AND revoked_at IS NULL"
)


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(*row)


def create_api_key(engine: Engine, client: str, *, operator: bool = False) -> NewApiKey:
    """A new key for `client` (a new client is simply a name not used before); an
    `operator` key may also read operator data."""
    check_client_name(client)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    shown = token[: len(TOKEN_PREFIX) + SHOWN_CHARACTERS]
    with autocommit(engine) as connection:
        row = connection.execute(_CREATE, (client, shown, token_digest(token), operator)).fetchone()
    assert row is not None
    return NewApiKey(_key(row), token)


def list_api_keys(
    engine: Engine, client: str | None = None, include_revoked: bool = False
) -> list[ApiKey]:
    """Keys by client, oldest first; revoked ones only when asked for."""
    with autocommit(engine) as connection:
        rows = connection.execute(_LIST, {"client": client, "revoked": include_revoked}).fetchall()
    return [_key(row) for row in rows]


def revoke_api_key(engine: Engine, key_id: int) -> ApiKey:
    """Revoke a key by id (revoking twice keeps the first time); ApiKeyError if none."""
    with autocommit(engine) as connection:
        row = connection.execute(_REVOKE, (key_id,)).fetchone()
    if row is None:
        raise ApiKeyError(f"no API key with id {key_id} (see: orderq api-keys list)")
    return _key(row)


def caller_of(connection: Any, token: str) -> Caller | None:
    """The client a live token speaks for, or None (unknown or revoked); one indexed
    read on the caller's psycopg connection."""
    row = connection.execute(_AUTHENTICATE, (token_digest(token),)).fetchone()
    return Caller(row[0], bool(row[1])) if row else None
