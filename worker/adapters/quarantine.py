"""The quarantine: broker messages the guard refused, kept for operators.

Every statement on `quarantined_messages` lives here (psycopg, on a connection the
caller owns, like `producers.command_log`). A message is stored once per fingerprint
(its content as sent, without what the broker changes on a redelivery), so a message
redelivered after a crash, or the same bad message published again, counts one more
delivery on its row instead of adding rows.

What is stored is bounded and safe to store whatever arrived: headers and properties
as JSON with text escaped (no NUL, no unpaired surrogate), nested at most a few levels
and cut at a few KB; the body as raw bytes, cut at `quarantine_body_bytes` (the full
size is kept beside it).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Engine

from producers.database import autocommit
from producers.wire import storable_key
from worker.adapters.envelope import (
    RAW_SIZE_HEADER,
    UNREADABLE_HEADER,
    Problem,
    Quarantined,
    RawMessage,
)


class QuarantineState(StrEnum):
    """`quarantined_messages.state`."""

    QUARANTINED = "quarantined"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


#: headers a broker sets or changes on a redelivery (kombu's `redelivered`, RabbitMQ's
#: `x-delivery-count`, `x-death` ...): not part of what was sent
_VOLATILE_HEADERS = frozenset({"redelivered", RAW_SIZE_HEADER})


def _sent(name: str) -> bool:
    return name not in _VOLATILE_HEADERS and (
        not name.startswith("x-") or name == UNREADABLE_HEADER
    )


_MAX_ITEMS = 100
_MAX_TEXT = 2000
_MAX_DEPTH = 8


@dataclass(frozen=True)
class QuarantineRecord:
    """One refused message, as the consumer captured it (JSON-safe: it travels to the
    pool as a task argument)."""

    fingerprint: str
    problem: str
    reason: str
    broker: str
    queue: str
    headers: dict[str, Any]
    properties: dict[str, Any]
    body: str  # base64 of the kept bytes
    body_size: int
    content_type: str | None = None
    content_encoding: str | None = None
    task_name: str | None = None
    task_id: str | None = None
    key: str | None = None
    #: the rejection to store under `key` (invalid_command, expired)
    rejection: str | None = None
    #: the mapping that carried the key (escaped), for the rejection's fingerprint and type
    command: dict[str, Any] | None = None

    @classmethod
    def capture(
        cls, raw: RawMessage, verdict: Quarantined, broker: str, queue: str, body_limit: int
    ) -> QuarantineRecord:
        """The record of `raw`, refused for `verdict`'s reason."""
        body = _body_bytes(raw.body)
        headers = storable(raw.headers if raw.headers is not None else {})
        if not isinstance(headers, dict):
            headers = {"(headers)": headers}
        declared = headers.get(RAW_SIZE_HEADER) if isinstance(raw.headers, Mapping) else None
        size = declared if isinstance(declared, int) and declared >= len(body) else len(body)
        properties = storable(_without_headers(raw.properties))
        return cls(
            fingerprint=_fingerprint(broker, queue, raw, headers, body),
            problem=str(verdict.problem),
            reason=verdict.reason,
            broker=broker,
            queue=_text(queue, 255),
            headers=headers,
            properties=properties if isinstance(properties, dict) else {"(properties)": properties},
            body=base64.b64encode(body[:body_limit]).decode(),
            body_size=size,
            content_type=_text(raw.content_type, 255) if raw.content_type is not None else None,
            content_encoding=(
                _text(raw.content_encoding, 255) if raw.content_encoding is not None else None
            ),
            task_name=_text(verdict.task, 255) if verdict.task is not None else None,
            task_id=_text(verdict.task_id, 255) if verdict.task_id is not None else None,
            key=verdict.key,
            rejection=verdict.rejection if verdict.key is not None else None,
            command=storable(dict(verdict.command)) if verdict.command is not None else None,
        )

    @classmethod
    def from_dict(cls, data: Any) -> QuarantineRecord:
        """The record from its task argument. Workers send well-formed ones; anything
        else (someone sending this task by hand) becomes a record saying so."""
        try:
            record = cls(**{name: data[name] for name in _REQUIRED}, **_optional(data))
            base64.b64decode(record.body, validate=True)
            checks = (
                all(isinstance(getattr(record, name), str) for name in _REQUIRED_TEXT),
                isinstance(record.headers, dict) and isinstance(record.properties, dict),
                isinstance(record.body_size, int) and record.body_size >= 0,
                record.problem in Problem.__members__.values(),
            )
            if not all(checks):
                raise ValueError("a field of the wrong type")
        except Exception:
            raw = repr(data).encode("utf-8", "backslashreplace")[:65536]
            return cls(
                fingerprint=hashlib.sha256(raw).hexdigest(),
                problem=str(Problem.REFUSED),
                reason="the quarantine task was sent something that is not a quarantine record",
                broker="unknown",
                queue="(unknown queue)",
                headers={},
                properties={},
                body=base64.b64encode(raw).decode(),
                body_size=len(raw),
            )
        if record.key is not None and storable_key(record.key) is None:
            record = replace(record, key=None, rejection=None)
        if record.key is None:
            record = replace(record, rejection=None)
        return record

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def body_bytes(self) -> bytes:
        return base64.b64decode(self.body)


@dataclass(frozen=True)
class StoredQuarantine:
    """What storing a record did: its row, and how often the message has come so far."""

    id: int
    deliveries: int
    state: str


@dataclass(frozen=True)
class QuarantinedMessage:
    """A row of the quarantine, as an operator sees it."""

    id: int
    state: str
    problem: str
    reason: str
    idempotency_key: str | None
    rejection: str | None
    task_name: str | None
    task_id: str | None
    broker: str
    queue: str
    content_type: str | None
    content_encoding: str | None
    headers: dict[str, Any]
    properties: dict[str, Any]
    body: bytes
    body_size: int
    deliveries: int
    first_seen_at: datetime
    last_seen_at: datetime
    discarded_at: datetime | None
    discarded_by: str | None
    discard_reason: str | None
    replayed_at: datetime | None
    replayed_by: str | None
    replayed_key: str | None

    @property
    def body_truncated(self) -> bool:
        return len(self.body) < self.body_size

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; the body as base64 (`body_base64`)."""
        data = asdict(self)
        data["body_base64"] = base64.b64encode(data.pop("body")).decode()
        data["body_truncated"] = self.body_truncated
        for name, value in data.items():
            if isinstance(value, datetime):
                data[name] = value.isoformat()
        return data


_REQUIRED = (
    "fingerprint",
    "problem",
    "reason",
    "broker",
    "queue",
    "headers",
    "properties",
    "body",
    "body_size",
)
_REQUIRED_TEXT = ("fingerprint", "problem", "reason", "broker", "queue", "body")
_OPTIONAL_TEXT = (
    "content_type",
    "content_encoding",
    "task_name",
    "task_id",
    "key",
    "rejection",
)


def _optional(data: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: data.get(name) if isinstance(data.get(name), str) else None for name in _OPTIONAL_TEXT
    }
    command = data.get("command")
    fields["command"] = command if isinstance(command, dict) else None
    return fields


# -- statements -------------------------------------------------------------------------

_COLUMNS = """
    id, state, problem, reason, idempotency_key, rejection, task_name, task_id, broker, queue,
    content_type, content_encoding, headers, properties, body, body_size, deliveries,
    first_seen_at, last_seen_at, discarded_at, discarded_by, discard_reason,
    replayed_at, replayed_by, replayed_key
"""
_RECORD = """
    INSERT INTO quarantined_messages AS q (
        fingerprint, problem, reason, idempotency_key, rejection, task_name, task_id,
        broker, queue, content_type, content_encoding, headers, properties, body, body_size)
    VALUES (%(fingerprint)s, %(problem)s, %(reason)s, %(key)s, %(rejection)s, %(task_name)s,
            %(task_id)s, %(broker)s, %(queue)s, %(content_type)s, %(content_encoding)s,
            %(headers)s, %(properties)s, %(body)s, %(body_size)s)
    ON CONFLICT (fingerprint) DO UPDATE
        SET deliveries = q.deliveries + 1, last_seen_at = now()
    RETURNING id, deliveries, state
"""
# served by ix_quarantined_messages_state_last_seen_at
_LIST = f"""
    SELECT {_COLUMNS} FROM quarantined_messages
    WHERE state = ANY(%(states)s)
      AND (%(problem)s::text IS NULL OR problem = %(problem)s)
      AND (%(key)s::text IS NULL OR idempotency_key = %(key)s)
    ORDER BY last_seen_at DESC, id DESC
    LIMIT %(limit)s
"""
_GET = f"SELECT {_COLUMNS} FROM quarantined_messages WHERE id = %s"
_DISCARD = f"""
    UPDATE quarantined_messages
    SET state = '{QuarantineState.DISCARDED}', discarded_at = now(), discarded_by = %s,
        discard_reason = %s
    WHERE id = %s
"""
_REPLAYED = f"""
    UPDATE quarantined_messages
    SET state = '{QuarantineState.REPLAYED}', replayed_at = now(), replayed_by = %s,
        replayed_key = %s
    WHERE id = %s
"""
_COUNT = "SELECT state, count(*) FROM quarantined_messages GROUP BY state"
# served by ix_quarantined_messages_state_last_seen_at (state first); capped, so a flood
# of quarantined messages cannot make a metrics scrape slow
_COUNT_WAITING = f"""
    SELECT count(*) FROM (
        SELECT 1 FROM quarantined_messages WHERE state = '{QuarantineState.QUARANTINED}'
        LIMIT %s
    ) q
"""
# Served by ix_quarantined_messages_last_seen_at; SKIP LOCKED leaves a row an operator is
# replaying or discarding for a later batch.
_PURGE_BATCH = """
    WITH doomed AS (
        SELECT id FROM quarantined_messages
        WHERE last_seen_at < now() - make_interval(secs => %(retention)s)
        ORDER BY last_seen_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    DELETE FROM quarantined_messages q USING doomed d WHERE q.id = d.id
"""


class QuarantineLog:
    """Every statement on the quarantine, on one psycopg connection (none commits)."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def record(self, record: QuarantineRecord) -> StoredQuarantine:
        """Store `record`, or count one more delivery of the same message."""
        row = self.connection.execute(
            _RECORD,
            {
                "fingerprint": record.fingerprint,
                "problem": record.problem,
                "reason": record.reason,
                "key": record.key,
                "rejection": record.rejection,
                "task_name": record.task_name,
                "task_id": record.task_id,
                "broker": record.broker,
                "queue": record.queue,
                "content_type": record.content_type,
                "content_encoding": record.content_encoding,
                "headers": Jsonb(record.headers),
                "properties": Jsonb(record.properties),
                "body": record.body_bytes(),
                "body_size": record.body_size,
            },
        ).fetchone()
        assert row is not None
        return StoredQuarantine(*row)

    def list(
        self,
        states: Sequence[QuarantineState],
        problem: str | None = None,
        key: str | None = None,
        limit: int = 50,
    ) -> list[QuarantinedMessage]:
        """Rows in `states`, the most recently seen first."""
        rows = self.connection.execute(
            _LIST,
            {"states": [str(s) for s in states], "problem": problem, "key": key, "limit": limit},
        ).fetchall()
        return [QuarantinedMessage(*row) for row in rows]

    def get(self, message_id: int, *, lock: bool = False) -> QuarantinedMessage | None:
        row = self.connection.execute(
            _GET + (" FOR UPDATE" if lock else ""), (message_id,)
        ).fetchone()
        return QuarantinedMessage(*row) if row else None

    def discard(self, message_id: int, reason: str, by: str) -> None:
        self.connection.execute(_DISCARD, (by, reason, message_id))

    def mark_replayed(self, message_id: int, key: str, by: str) -> None:
        self.connection.execute(_REPLAYED, (by, key, message_id))

    def counts(self) -> dict[str, int]:
        """Rows per state."""
        return dict(self.connection.execute(_COUNT).fetchall())  # type: ignore[arg-type]

    def waiting(self, cap: int) -> int:
        """Messages still in quarantine (neither discarded nor replayed), at most `cap`."""
        (count,) = self.connection.execute(_COUNT_WAITING, (cap,)).fetchone()  # type: ignore[misc]
        return int(count)

    def purge_batch(self, retention_seconds: float, limit: int) -> int:
        """Delete up to `limit` rows last seen before the retention window; how many."""
        cursor = self.connection.execute(
            _PURGE_BATCH, {"retention": retention_seconds, "limit": limit}
        )
        return cursor.rowcount


class QuarantineStore:
    """The worker's side: each call one statement that commits on its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, record: QuarantineRecord) -> StoredQuarantine:
        with autocommit(self.engine) as connection:
            return QuarantineLog(connection).record(record)

    def waiting(self, cap: int) -> int:
        """Messages still in quarantine (neither discarded nor replayed), at most `cap`."""
        (count,) = self.connection.execute(_COUNT_WAITING, (cap,)).fetchone()  # type: ignore[misc]
        return int(count)

    def purge_batch(self, retention_seconds: float, limit: int) -> int:
        with autocommit(self.engine) as connection:
            return QuarantineLog(connection).purge_batch(retention_seconds, limit)


# -- making anything storable -------------------------------------------------------------


def storable(value: Any, depth: int = 0) -> Any:
    """`value` as JSON PostgreSQL accepts: text escaped, numbers finite, bounded in size."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) < value < 2**63 else _text(str(value), 100)
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, str):
        return _text(value, _MAX_TEXT)
    if isinstance(value, bytes | bytearray | memoryview):
        return _text(repr(bytes(value)), _MAX_TEXT)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if depth >= _MAX_DEPTH:
        return "…(nested deeper)"
    if isinstance(value, Mapping):
        items = list(value.items())
        stored = {
            _text(name if isinstance(name, str) else repr(name), 200): storable(item, depth + 1)
            for name, item in items[:_MAX_ITEMS]
        }
        if len(items) > _MAX_ITEMS:
            stored["…"] = f"{len(items) - _MAX_ITEMS} more"
        return stored
    if isinstance(value, list | tuple):
        stored_items = [storable(item, depth + 1) for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            stored_items.append(f"…{len(value) - _MAX_ITEMS} more")
        return stored_items
    return _text(repr(value), _MAX_TEXT)


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\x00", "\\0")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return repr(body).encode("utf-8", "backslashreplace")


def _without_headers(properties: Any) -> Any:
    # AMQP properties repeat the headers as `application_headers`; they are kept once
    if isinstance(properties, Mapping):
        return {name: value for name, value in properties.items() if name != "application_headers"}
    return properties


def _fingerprint(
    broker: str, queue: str, raw: RawMessage, headers: dict[str, Any], body: bytes
) -> str:
    sent = {name: value for name, value in headers.items() if _sent(name)}
    described = json.dumps(
        [broker, queue, storable(raw.content_type), storable(raw.content_encoding), sent],
        sort_keys=True,
        ensure_ascii=True,
    )
    digest = hashlib.sha256(described.encode())
    digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()
