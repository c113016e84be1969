"""The command log: the ledger of decided keys and the delivery log of every key heard of.

Both tables are the shared record between whoever publishes a command, the workers
that decide it and the operators who look after it, so every statement on them lives
here, in one style (psycopg on a connection the caller owns), and each status
vocabulary is defined once:

- `command_ledger`, one row per key that reached an outcome: `LedgerStatus`
  (`processing` exists only inside the transaction that claimed the key);
- `command_deliveries`, one row per key published or delivered: `DeliveryState`,
  its attempts (counted in their own committed statement), dead letters and replays;
- `command_key_reuses`, one row per key that a later delivery tried to reuse with a
  different payload: the refusal producers see next to the key's outcome.

The caller decides the transaction: `producers.database.transaction(engine)` or
`autocommit(engine)` for a pooled connection, or the unit of work's own connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


class LedgerStatus(StrEnum):
    """`command_ledger.status`."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"


class DeliveryState(StrEnum):
    """`command_deliveries.state`."""

    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"
    DISCARDED = "discarded"


DECIDED: tuple[LedgerStatus, ...] = (LedgerStatus.SUCCEEDED, LedgerStatus.REJECTED)
#: a key in one of these states is not run again until an operator replays it
DEAD: tuple[DeliveryState, ...] = (DeliveryState.FAILED, DeliveryState.DISCARDED)
#: accepted, no outcome yet
PENDING: tuple[DeliveryState, ...] = (DeliveryState.QUEUED, DeliveryState.RUNNING)


def sql_values(values: Iterable[str]) -> str:
    """`'a', 'b'` — a vocabulary as SQL literals, for CHECKs and partial-index predicates
    (which the planner matches only against literals, not parameters)."""
    return ", ".join("'" + str(value).replace("'", "''") + "'" for value in values)


_DECIDED = sql_values(DECIDED)
_DEAD = sql_values(DEAD)
_PENDING = sql_values(PENDING)


@dataclass(frozen=True)
class LedgerEntry:
    """A key's row in the ledger (decided, unless read inside its claiming transaction)."""

    key: str
    command_type: str
    fingerprint: str
    status: str
    result: dict[str, Any] | None
    reason: str | None


@dataclass(frozen=True)
class Attempt:
    """This delivery's attempt number for its key, and the key's delivery state.

    `decided` is the key's committed outcome if it has one (nothing was counted). For
    a dead letter nothing is counted either and `error` is why it is dead.
    """

    number: int
    state: str
    error: str | None = None
    decided: LedgerEntry | None = None
    #: seconds since the key was first recorded (accepted by a tracked publish or the
    #: first delivery), by the database's clock
    accepted_seconds_ago: float = 0.0

    @property
    def is_dead(self) -> bool:
        return self.state in DEAD


@dataclass(frozen=True)
class Claim:
    """One key of a batch: what `count_attempts` and `claim_many` record for it."""

    key: str
    command_type: str
    fingerprint: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class DeliveryRecord:
    """A key's row in the delivery log, as an operator sees it."""

    key: str
    command_type: str
    state: str
    attempts: int
    last_error: str | None
    payload: dict[str, Any]
    failed_at: datetime | None
    discarded_at: datetime | None
    discard_reason: str | None
    discarded_by: str | None
    replays: int
    created_at: datetime
    updated_at: datetime
    #: `succeeded`/`rejected` if the ledger has an outcome for the key after all.
    outcome: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name, value in data.items():
            if isinstance(value, datetime):
                data[name] = value.isoformat()
        return data


@dataclass(frozen=True)
class KeyReuse:
    """Deliveries refused because they reused a key with another payload (the last one's
    command type and payload fingerprint)."""

    command_type: str
    fingerprint: str
    refusals: int
    first_refused_at: datetime
    last_refused_at: datetime


@dataclass(frozen=True)
class KeyRecord:
    """Everything the log knows about one key: its outcome and its delivery row."""

    decided: LedgerEntry | None
    #: the attempt that decided it, else the attempts counted so far (None: no row)
    attempts: int | None
    state: str | None  # the delivery row's state, None without one
    error: str | None
    #: the delivery row's command type and payload fingerprint (`lookup_many` only)
    command_type: str | None = None
    fingerprint: str | None = None
    #: refused later deliveries of the key with another payload (`lookup` only)
    reuse: KeyReuse | None = None


@dataclass(frozen=True)
class Acceptance:
    """What accepting a key for publishing found: `created` (this call recorded it), or
    the key's existing record (decided, or accepted earlier by someone else)."""

    created: bool
    existing: KeyRecord | None = None


@dataclass(frozen=True)
class UnpublishedCommand:
    """A command accepted (over HTTP) and not yet handed to the broker."""

    key: str
    command_type: str
    payload: dict[str, Any]
    state: str
    #: the trace context of the request that accepted it (publish inside it), if traced
    trace_context: dict[str, str] | None = None

    @property
    def needs_sending(self) -> bool:
        """False once a worker has taken it: the broker had it after all (the process
        that sent it died before recording that)."""
        return self.state == DeliveryState.QUEUED


@dataclass(frozen=True)
class StuckCommand:
    """An accepted command with no outcome after a while."""

    key: str
    command_type: str
    payload: dict[str, Any]
    #: the trace context of the HTTP request that accepted it, if traced
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True)
class Backlog:
    """What is waiting, for monitoring: commands accepted but not yet taken by a worker
    (`queued`, no outcome) and dead letters still waiting for an operator."""

    queued: int
    #: age of the oldest queued command, 0 when none is queued
    oldest_queued_seconds: float
    dead_letters: int


@dataclass(frozen=True)
class CommandCounts:
    """Dead letters by state, and commands with no outcome after `stuck_after_seconds`."""

    failed: int
    discarded: int
    stuck: int
    stuck_after_seconds: float


# -- statements ---------------------------------------------------------------------------

_LEDGER_COLUMNS = "idempotency_key, command_type, fingerprint, status, result, reason"
_DELIVERY_COLUMNS = """
    d.idempotency_key, d.command_type, d.state, d.attempts, d.last_error, d.payload,
    d.failed_at, d.discarded_at, d.discard_reason, d.discarded_by, d.replays,
    d.created_at, d.updated_at, l.status AS outcome
"""
_DELIVERY_FROM = f"""
    FROM command_deliveries d
    LEFT JOIN command_ledger l
        ON l.idempotency_key = d.idempotency_key AND l.status IN ({_DECIDED})
"""
#: the delivery row `d` has no outcome in the ledger
_NOT_DECIDED = f"""NOT EXISTS (
        SELECT 1 FROM command_ledger l
        WHERE l.idempotency_key = d.idempotency_key AND l.status IN ({_DECIDED})
    )"""

_RECORD_QUEUED = """
    INSERT INTO command_deliveries (idempotency_key, command_type, fingerprint, payload)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING true
"""
_FORGET_QUEUED = f"""
    DELETE FROM command_deliveries
    WHERE idempotency_key = %s AND state = '{DeliveryState.QUEUED}' AND attempts = 0
"""
_LOOKUP = f"""
    SELECT l.command_type, l.fingerprint, l.status, l.result, l.reason,
           coalesce(l.attempts, d.attempts), d.state, coalesce(d.discard_reason, d.last_error),
           r.command_type, r.fingerprint, r.refusals, r.first_refused_at, r.last_refused_at
    FROM (SELECT %(key)s::text AS idempotency_key) k
    LEFT JOIN command_ledger l
        ON l.idempotency_key = k.idempotency_key AND l.status IN ({_DECIDED})
    LEFT JOIN command_deliveries d ON d.idempotency_key = k.idempotency_key
    LEFT JOIN command_key_reuses r ON r.idempotency_key = k.idempotency_key
"""
_RECORD_KEY_REUSE = """
    INSERT INTO command_key_reuses AS r (idempotency_key, command_type, fingerprint)
    VALUES (%s, %s, %s)
    ON CONFLICT (idempotency_key) DO UPDATE SET
        command_type = excluded.command_type,
        fingerprint = excluded.fingerprint,
        refusals = r.refusals + 1,
        last_refused_at = now()
"""

# The HTTP intake: record the key as accepted and not yet published, unless the ledger
# already decided it (then nothing is written and the outcome is returned). A key
# someone accepted before conflicts and is read back by a second statement, because a
# row committed while this insert waited is not in this statement's snapshot.
_ACCEPT = f"""
    WITH decided AS (
        SELECT command_type, fingerprint, status, result, reason, attempts
        FROM command_ledger
        WHERE idempotency_key = %(key)s AND status IN ({_DECIDED})
    ), inserted AS (
        INSERT INTO command_deliveries
            (idempotency_key, command_type, fingerprint, payload, published_at, trace_context)
        SELECT %(key)s, %(type)s, %(fingerprint)s, %(payload)s, NULL, %(trace_context)s
        WHERE NOT EXISTS (SELECT FROM decided)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM inserted), decided.command_type, decided.fingerprint,
           decided.status, decided.result, decided.reason, decided.attempts
    FROM (SELECT) AS one LEFT JOIN decided ON true
"""
_LOOKUP_MANY = f"""
    SELECT k.idempotency_key, l.command_type, l.fingerprint, l.status, l.result, l.reason,
           coalesce(l.attempts, d.attempts), d.state, coalesce(d.discard_reason, d.last_error),
           d.command_type, d.fingerprint
    FROM unnest(%s::text[]) AS k(idempotency_key)
    LEFT JOIN command_ledger l
        ON l.idempotency_key = k.idempotency_key AND l.status IN ({_DECIDED})
    LEFT JOIN command_deliveries d ON d.idempotency_key = k.idempotency_key
"""
# Served by ix_command_deliveries_unpublished_created_at (empty while brokers are up).
# SKIP LOCKED: two relays (API processes, maintenance) never send the same batch.
_CLAIM_UNPUBLISHED = """
    SELECT idempotency_key, command_type, payload, state, trace_context
    FROM command_deliveries
    WHERE published_at IS NULL
      AND created_at < now() - make_interval(secs => %(older_than)s)
    ORDER BY created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
"""
_COUNT_UNPUBLISHED = "SELECT count(*) FROM command_deliveries WHERE published_at IS NULL"
_MARK_PUBLISHED = """
    UPDATE command_deliveries SET published_at = now()
    WHERE idempotency_key = ANY(%s) AND published_at IS NULL
"""

# Claim the key, or (same statement) read the committed row that holds it. The read
# uses the statement's snapshot, so a row committed while the insert waited on the
# unique index is not in it; `claim` then reads it with a second statement.
_CLAIM = f"""
    WITH claimed AS (
        INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status)
        VALUES (%(key)s, %(type)s, %(fingerprint)s, '{LedgerStatus.PROCESSING}')
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
    )
    SELECT true, NULL, NULL, NULL, NULL, NULL, NULL FROM claimed
    UNION ALL
    SELECT false, {_LEDGER_COLUMNS} FROM command_ledger
    WHERE idempotency_key = %(key)s AND NOT EXISTS (SELECT 1 FROM claimed)
"""
_FIND = f"SELECT {_LEDGER_COLUMNS} FROM command_ledger WHERE idempotency_key = %s"
_RECORD_OUTCOME = """
    UPDATE command_ledger
    SET status = %s, result = %s, reason = %s, attempts = %s, completed_at = clock_timestamp()
    WHERE idempotency_key = %s
"""
_DECIDED_ENTRIES = f"""
    SELECT {_LEDGER_COLUMNS} FROM command_ledger
    WHERE idempotency_key = ANY(%s) AND status IN ({_DECIDED})
"""
_DECIDED_ENTRIES_LIKE = f"""
    SELECT {_LEDGER_COLUMNS} FROM command_ledger
    WHERE idempotency_key LIKE %s AND status IN ({_DECIDED})
"""

# One statement reads the ledger and counts the attempt: a duplicate of a decided key
# gets its outcome back and uses up no attempt; a dead letter is not counted either.
_COUNT_ATTEMPT = f"""
    WITH decided AS (
        SELECT command_type, fingerprint, status, result, reason
        FROM command_ledger
        WHERE idempotency_key = %(key)s AND status IN ({_DECIDED})
    ), counted AS (
        INSERT INTO command_deliveries AS d
            (idempotency_key, command_type, fingerprint, payload, state, attempts, deliveries)
        VALUES (%(key)s, %(type)s, %(fingerprint)s, %(payload)s,
                '{DeliveryState.RUNNING}', 1, 1)
        ON CONFLICT (idempotency_key) DO UPDATE SET
            deliveries = d.deliveries + 1,
            attempts = CASE
                WHEN d.state IN ({_DEAD}) OR EXISTS (SELECT FROM decided)
                THEN d.attempts ELSE d.attempts + 1 END,
            state = CASE WHEN d.state = '{DeliveryState.QUEUED}'
                         THEN '{DeliveryState.RUNNING}' ELSE d.state END,
            updated_at = now()
        RETURNING d.attempts, d.state, coalesce(d.discard_reason, d.last_error) AS error,
                  extract(epoch FROM now() - d.created_at)::float8 AS age
    )
    SELECT counted.attempts, counted.state, counted.error,
           decided.command_type, decided.fingerprint,
           decided.status, decided.result, decided.reason, counted.age
    FROM counted LEFT JOIN decided ON true
"""
# The same for a batch of distinct keys in one statement, in key order: two batches
# that share keys lock their delivery rows in the same order, so they cannot deadlock.
_COUNT_ATTEMPTS = f"""
    WITH batch AS (
        SELECT * FROM unnest(%(keys)s::text[], %(types)s::text[], %(fingerprints)s::text[],
                             %(payloads)s::jsonb[])
            AS b(idempotency_key, command_type, fingerprint, payload)
    ), decided AS (
        SELECT l.idempotency_key, l.command_type, l.fingerprint, l.status, l.result, l.reason
        FROM command_ledger l JOIN batch USING (idempotency_key)
        WHERE l.status IN ({_DECIDED})
    ), counted AS (
        INSERT INTO command_deliveries AS d
            (idempotency_key, command_type, fingerprint, payload, state, attempts, deliveries)
        SELECT idempotency_key, command_type, fingerprint, payload,
               '{DeliveryState.RUNNING}', 1, 1
        FROM batch ORDER BY idempotency_key
        ON CONFLICT (idempotency_key) DO UPDATE SET
            deliveries = d.deliveries + 1,
            attempts = CASE
                WHEN d.state IN ({_DEAD})
                  OR EXISTS (SELECT FROM decided WHERE decided.idempotency_key = d.idempotency_key)
                THEN d.attempts ELSE d.attempts + 1 END,
            state = CASE WHEN d.state = '{DeliveryState.QUEUED}'
                         THEN '{DeliveryState.RUNNING}' ELSE d.state END,
            updated_at = now()
        RETURNING d.idempotency_key, d.attempts, d.state,
                  coalesce(d.discard_reason, d.last_error) AS error,
                  extract(epoch FROM now() - d.created_at)::float8 AS age
    )
    SELECT counted.idempotency_key, counted.attempts, counted.state, counted.error,
           decided.command_type, decided.fingerprint,
           decided.status, decided.result, decided.reason, counted.age
    FROM counted LEFT JOIN decided USING (idempotency_key)
"""
# Claim a batch's keys in one statement, in key order (the global lock order of the
# ledger's unique index); the keys it returns are claimed, the others are read back.
_CLAIM_MANY = f"""
    INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status)
    SELECT idempotency_key, command_type, fingerprint, '{LedgerStatus.PROCESSING}'
    FROM unnest(%(keys)s::text[], %(types)s::text[], %(fingerprints)s::text[])
        AS b(idempotency_key, command_type, fingerprint)
    ORDER BY idempotency_key
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING idempotency_key
"""
_RELEASE_CLAIM = f"""
    DELETE FROM command_ledger
    WHERE idempotency_key = %s AND status = '{LedgerStatus.PROCESSING}'
"""
_FIND_MANY = f"SELECT {_LEDGER_COLUMNS} FROM command_ledger WHERE idempotency_key = ANY(%s)"
_RECORD_ERROR = """
    UPDATE command_deliveries SET last_error = %s, updated_at = now()
    WHERE idempotency_key = %s
"""
_MARK_FAILED = f"""
    UPDATE command_deliveries
    SET state = '{DeliveryState.FAILED}', last_error = %s, payload = %s, fingerprint = %s,
        failed_at = now(), updated_at = now()
    WHERE idempotency_key = %s AND state NOT IN ({_DEAD})
"""

# SKIP LOCKED: a row some transaction holds (a concurrent redelivery of an old key) is
# left for a later batch instead of making the purge wait. The delivery record of a
# purged key goes with it, so the key does not look "stuck" afterwards; dead letters
# stay for the operator. Served by ix_command_ledger_created_at.
_PURGE_BATCH = f"""
    WITH doomed AS (
        SELECT id FROM command_ledger
        WHERE created_at < now() - make_interval(secs => %(retention)s)
        ORDER BY created_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM command_ledger l USING doomed d WHERE l.id = d.id
        RETURNING l.idempotency_key
    ), cleared AS (
        DELETE FROM command_deliveries c USING gone g
        WHERE c.idempotency_key = g.idempotency_key AND c.state IN ({_PENDING})
        RETURNING 1
    ), reuses AS (
        DELETE FROM command_key_reuses r USING gone g
        WHERE r.idempotency_key = g.idempotency_key
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM cleared)
"""

# Served by ix_command_deliveries_pending_updated_at. SKIP LOCKED lets two runs (or a
# worker counting an attempt) proceed without waiting on each other's rows.
_STUCK_WHERE = f"""
    d.state IN ({_PENDING})
    AND d.updated_at < now() - make_interval(secs => %(older_than)s)
    AND {_NOT_DECIDED}
"""
_CLAIM_STUCK = f"""
    SELECT d.idempotency_key, d.command_type, d.payload, d.trace_context
    FROM command_deliveries d
    WHERE {_STUCK_WHERE}
      AND d.republished < %(max_times)s
      AND d.command_type = ANY(%(types)s)
    ORDER BY d.updated_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
"""
_MARK_REPUBLISHED = """
    UPDATE command_deliveries
    SET republished = republished + 1, published_at = coalesce(published_at, now()),
        updated_at = now()
    WHERE idempotency_key = ANY(%s)
"""
_COUNT_STUCK = f"SELECT count(*) FROM command_deliveries d WHERE {_STUCK_WHERE}"
# For every scrape of the metrics: the queued rows through their own small partial index
# (ix_command_deliveries_queued_created_at), the dead letters through theirs; the ledger
# is probed per row by its unique key. A queued row whose key has an outcome anyway
# (stored without a counted attempt, e.g. `rejected: invalid_command`) is not waiting.
_BACKLOG = f"""
    SELECT
        (SELECT count(*) FROM command_deliveries d
         WHERE d.state = '{DeliveryState.QUEUED}' AND {_NOT_DECIDED}),
        (SELECT coalesce(extract(epoch FROM now() - min(d.created_at)), 0)::float8
         FROM command_deliveries d
         WHERE d.state = '{DeliveryState.QUEUED}' AND {_NOT_DECIDED}),
        (SELECT count(*) FROM command_deliveries d
         WHERE d.state = '{DeliveryState.FAILED}' AND {_NOT_DECIDED})
"""
_COUNT_DEAD = f"""
    SELECT state, count(*) FROM command_deliveries WHERE state IN ({_DEAD}) GROUP BY state
"""

_DEAD_LETTERS = f"""
    SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM}
    WHERE d.state = ANY(%(states)s)
      AND l.status IS NULL  -- a concurrent copy that succeeded after all is not dead
      AND (%(command_type)s::text IS NULL OR d.command_type = %(command_type)s)
    ORDER BY d.state, d.failed_at DESC, d.idempotency_key
    LIMIT %(limit)s
"""
_DELIVERY = f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM} WHERE d.idempotency_key = %s"
_DELIVERY_LOCKED = _DELIVERY + " FOR UPDATE OF d"
_RESET_FOR_REPLAY = f"""
    UPDATE command_deliveries
    SET state = '{DeliveryState.QUEUED}', attempts = 0, failed_at = NULL,
        replays = replays + 1, updated_at = now()
    WHERE idempotency_key = %s
"""
_DISCARD = f"""
    UPDATE command_deliveries
    SET state = '{DeliveryState.DISCARDED}', discard_reason = %s, discarded_by = %s,
        discarded_at = now(), updated_at = now()
    WHERE idempotency_key = %s
"""
# Operators reading the ledger by outcome and time, newest first, in keyset pages.
# Served by ix_command_ledger_created_at (walked backwards, the status filtered on
# the way): an index on status would make the outcome UPDATE of every command a
# non-HOT update (status is written after the claim), a cost paid on the hot path for
# an operator's read. The time window bounds the walk.
_LEDGER_PAGE = """
    SELECT id, idempotency_key, command_type, status, reason, result, attempts,
           created_at, completed_at
    FROM command_ledger
    WHERE status = %(status)s AND created_at >= %(since)s AND created_at < %(until)s {after}
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
"""
_LEDGER_FIRST_PAGE = _LEDGER_PAGE.format(after="")
_LEDGER_NEXT_PAGE = _LEDGER_PAGE.format(
    after="AND (created_at, id) < (%(after_created_at)s, %(after_id)s)"
)

_DELIVERY_COUNTS = """
    SELECT idempotency_key, deliveries FROM command_deliveries WHERE idempotency_key = ANY(%s)
"""
_DELIVERY_COUNTS_LIKE = """
    SELECT idempotency_key, deliveries FROM command_deliveries WHERE idempotency_key LIKE %s
"""


class CommandLog:
    """Every statement on the ledger and the delivery log, on one psycopg connection.

    Methods run in whatever transaction the connection is in; none commits.
    """

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def _one(self, query: str, params: Sequence[Any] | dict[str, Any]) -> Any:
        return self.connection.execute(query, params).fetchone()  # type: ignore[arg-type]

    def _all(self, query: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
        return self.connection.execute(query, params).fetchall()  # type: ignore[arg-type]

    # -- publishing and lookup ------------------------------------------------------------

    def record_queued(
        self, key: str, command_type: str, fingerprint: str, payload: dict[str, Any]
    ) -> bool:
        """Record `key` as published (`queued`); True if this call created its row."""
        return (
            self._one(_RECORD_QUEUED, (key, command_type, fingerprint, Jsonb(payload))) is not None
        )

    def forget_queued(self, key: str) -> None:
        """Undo `record_queued` for a message the broker refused (a row a worker already
        touched is left alone: the broker took the message after all)."""
        self.connection.execute(_FORGET_QUEUED, (key,))

    def lookup(self, key: str) -> KeyRecord:
        """The key's outcome, delivery row and refused reuses, in one round trip."""
        row = self._one(_LOOKUP, {"key": key})
        command_type, fingerprint, status, result, reason, attempts, state, error = row[:8]
        decided = (
            LedgerEntry(key, command_type, fingerprint, status, result, reason)
            if status is not None
            else None
        )
        reuse = KeyReuse(*row[8:]) if row[8] is not None else None
        return KeyRecord(decided, attempts, state, error, reuse=reuse)

    def record_key_reuse(self, key: str, command_type: str, fingerprint: str) -> None:
        """Remember that a delivery reusing `key` with another payload was refused."""
        self.connection.execute(_RECORD_KEY_REUSE, (key, command_type, fingerprint))

    def lookup_many(self, keys: Sequence[str]) -> dict[str, KeyRecord]:
        """`lookup` for many keys in one round trip (with the delivery row's type and
        fingerprint); every key is in the answer, unknown ones with empty records."""
        records = {}
        for row in self._all(_LOOKUP_MANY, (list(keys),)):
            key, command_type, fingerprint, status, result, reason = row[:6]
            attempts, state, error, delivery_type, delivery_fingerprint = row[6:]
            decided = (
                LedgerEntry(key, command_type, fingerprint, status, result, reason)
                if status is not None
                else None
            )
            records[key] = KeyRecord(
                decided, attempts, state, error, delivery_type, delivery_fingerprint
            )
        return records

    # -- the HTTP intake and its relay -------------------------------------------------------

    def accept(
        self,
        key: str,
        command_type: str,
        fingerprint: str,
        payload: dict[str, Any],
        trace_context: dict[str, str] | None = None,
    ) -> Acceptance:
        """Record `key` as accepted and not yet published (`queued`, `published_at`
        NULL), unless it is decided or was accepted before: then return what is known.
        `trace_context` (the accepting request's, when traced) is kept for whoever
        publishes the command, so the trace goes on through the broker."""
        params = {"key": key, "type": command_type, "fingerprint": fingerprint}
        context = Jsonb(trace_context) if trace_context else None
        row = self._one(_ACCEPT, {**params, "payload": Jsonb(payload), "trace_context": context})
        created, ledger_type, ledger_fingerprint, status, result, reason, attempts = row
        if created:
            return Acceptance(True)
        if status is not None:
            decided = LedgerEntry(key, ledger_type, ledger_fingerprint, status, result, reason)
            return Acceptance(False, KeyRecord(decided, attempts, None, None))
        return Acceptance(False, self.lookup_many([key])[key])

    def claim_unpublished(self, older_than_seconds: float, limit: int) -> list[UnpublishedCommand]:
        """Lock up to `limit` accepted commands not yet published, oldest first (skipping
        rows others hold); record the ones sent with `mark_published`."""
        rows = self._all(_CLAIM_UNPUBLISHED, {"older_than": older_than_seconds, "limit": limit})
        return [UnpublishedCommand(*row) for row in rows]

    def mark_published(self, keys: Sequence[str]) -> None:
        """The broker took these commands."""
        self.connection.execute(_MARK_PUBLISHED, (list(keys),))

    def count_unpublished(self) -> int:
        """Accepted commands not yet handed to the broker (a partial-index count)."""
        (count,) = self._one(_COUNT_UNPUBLISHED, ())
        return int(count)

    # -- deciding (inside the command's transaction) ----------------------------------------

    def claim(self, key: str, command_type: str, fingerprint: str) -> LedgerEntry | None:
        """Insert the key's ledger row; return the existing entry if another got there first.

        If a concurrent transaction holds the same key uncommitted, the insert waits on
        the unique index until that transaction ends, then either claims the key (it
        rolled back) or finds its committed outcome.
        """
        row = self._one(_CLAIM, {"key": key, "type": command_type, "fingerprint": fingerprint})
        if row is not None and row[0]:
            return None
        if row is not None:
            return LedgerEntry(*row[1:])
        return self.find(key)  # committed while we waited: outside the first snapshot

    def claim_many(self, claims: Sequence[Claim]) -> dict[str, LedgerEntry | None]:
        """`claim` for a batch of distinct keys in one statement (locks in key order).

        Every key maps to None (claimed by this transaction) or to the entry another
        delivery committed.
        """
        ordered = sorted(claims, key=lambda claim: claim.key)
        rows = self._all(
            _CLAIM_MANY,
            {
                "keys": [claim.key for claim in ordered],
                "types": [claim.command_type for claim in ordered],
                "fingerprints": [claim.fingerprint for claim in ordered],
            },
        )
        claimed = {row[0] for row in rows}
        taken = [claim.key for claim in ordered if claim.key not in claimed]
        found = {}
        if taken:
            found = {row[0]: LedgerEntry(*row) for row in self._all(_FIND_MANY, (taken,))}
        if len(found) != len(taken):  # purged between the two statements
            raise LookupError(f"ledger rows gone while claiming: {sorted(set(taken) - set(found))}")
        return {claim.key: found.get(claim.key) for claim in ordered}

    def release_claim(self, key: str) -> None:
        """Remove this transaction's claim on `key` (its command was not decided)."""
        self.connection.execute(_RELEASE_CLAIM, (key,))

    def find(self, key: str) -> LedgerEntry | None:
        row = self._one(_FIND, (key,))
        return LedgerEntry(*row) if row else None

    def record_outcome(
        self,
        key: str,
        status: LedgerStatus | str,
        result: dict[str, Any] | None,
        reason: str | None,
        attempts: int,
    ) -> None:
        """Write the outcome into the key's claimed row."""
        result_json = Jsonb(result) if result is not None else None
        self.connection.execute(
            _RECORD_OUTCOME, (str(status), result_json, reason, max(attempts, 1), key)
        )

    # -- attempts and dead letters (each statement commits on its own) -----------------------

    def count_attempt(
        self, key: str, command_type: str, fingerprint: str, payload: dict[str, Any]
    ) -> Attempt:
        """Count one more attempt for `key`, unless it is decided or a dead letter."""
        row = self._one(
            _COUNT_ATTEMPT,
            {
                "key": key,
                "type": command_type,
                "fingerprint": fingerprint,
                "payload": Jsonb(payload),
            },
        )
        attempts, state, error, ledger_type, ledger_fingerprint, status, result, reason, age = row
        decided = (
            LedgerEntry(key, ledger_type, ledger_fingerprint, status, result, reason)
            if status is not None
            else None
        )
        return Attempt(attempts, state, error, decided, age)

    def count_attempts_statement(self, claims: Sequence[Claim]) -> tuple[str, dict[str, Any]]:
        """The statement counting an attempt for each of a batch's distinct keys (key
        order), for the caller to send in its own transaction; `read_attempts` reads
        its rows."""
        ordered = sorted(claims, key=lambda claim: claim.key)
        return _COUNT_ATTEMPTS, {
            "keys": [claim.key for claim in ordered],
            "types": [claim.command_type for claim in ordered],
            "fingerprints": [claim.fingerprint for claim in ordered],
            "payloads": [Jsonb(claim.payload) for claim in ordered],
        }

    @staticmethod
    def read_attempts(rows: Iterable[Sequence[Any]]) -> dict[str, Attempt]:
        """Each key's `Attempt`, from the rows of `count_attempts_statement`."""
        attempts = {}
        for (
            key,
            number,
            state,
            error,
            ledger_type,
            fingerprint,
            status,
            result,
            reason,
            age,
        ) in rows:
            decided = (
                LedgerEntry(key, ledger_type, fingerprint, status, result, reason)
                if status is not None
                else None
            )
            attempts[key] = Attempt(number, state, error, decided, age)
        return attempts

    def record_error(self, key: str, error: str) -> None:
        """Remember the latest failure of a key that will be retried."""
        self.connection.execute(_RECORD_ERROR, (error, key))

    def mark_failed(self, key: str, error: str, payload: dict[str, Any], fingerprint: str) -> None:
        """Dead-letter `key` with the exact payload that failed and why."""
        self.connection.execute(_MARK_FAILED, (error, Jsonb(payload), fingerprint, key))

    # -- maintenance ----------------------------------------------------------------------

    def purge_ledger_batch(self, retention_seconds: float, limit: int) -> tuple[int, int]:
        """Delete up to `limit` ledger rows older than the retention window (and their
        pending delivery rows); return (ledger rows, delivery rows) deleted."""
        ledger_rows, delivery_rows = self._one(
            _PURGE_BATCH, {"retention": retention_seconds, "limit": limit}
        )
        return ledger_rows, delivery_rows

    def claim_stuck(
        self, older_than_seconds: float, max_times: int, limit: int, command_types: list[str]
    ) -> list[StuckCommand]:
        """Lock up to `limit` commands accepted long ago without an outcome (skipping
        rows others hold); mark the ones re-sent with `mark_republished`."""
        rows = self._all(
            _CLAIM_STUCK,
            {
                "older_than": older_than_seconds,
                "max_times": max_times,
                "limit": limit,
                "types": command_types,
            },
        )
        return [StuckCommand(*row) for row in rows]

    def mark_republished(self, keys: list[str]) -> None:
        self.connection.execute(_MARK_REPUBLISHED, (keys,))

    def counts(self, stuck_after_seconds: float) -> CommandCounts:
        """Dead letters by state and commands stuck without an outcome."""
        dead = dict(self._all(_COUNT_DEAD, ()))
        (stuck,) = self._one(_COUNT_STUCK, {"older_than": stuck_after_seconds})
        return CommandCounts(
            failed=dead.get(DeliveryState.FAILED.value, 0),
            discarded=dead.get(DeliveryState.DISCARDED.value, 0),
            stuck=stuck,
            stuck_after_seconds=stuck_after_seconds,
        )

    def backlog(self) -> Backlog:
        """Queued commands (count, oldest age) and dead letters, in one cheap statement."""
        queued, oldest, dead_letters = self._one(_BACKLOG, ())
        return Backlog(queued, oldest, dead_letters)

    # -- operators: dead letters -----------------------------------------------------------

    def dead_letters(
        self, states: Sequence[DeliveryState], command_type: str | None, limit: int
    ) -> list[DeliveryRecord]:
        """Dead letters in `states`, newest failure first (keys decided after all are left out)."""
        rows = self._all(
            _DEAD_LETTERS,
            {"states": [str(s) for s in states], "command_type": command_type, "limit": limit},
        )
        return [DeliveryRecord(*row) for row in rows]

    def delivery(self, key: str, *, lock: bool = False) -> DeliveryRecord | None:
        """The key's delivery row (locked `FOR UPDATE` with `lock`), whatever its state."""
        row = self._one(_DELIVERY_LOCKED if lock else _DELIVERY, (key,))
        return DeliveryRecord(*row) if row else None

    def reset_for_replay(self, key: str) -> None:
        """Back to `queued` with fresh attempts; the replay is counted."""
        self.connection.execute(_RESET_FOR_REPLAY, (key,))

    def discard(self, key: str, reason: str, by: str) -> None:
        """Give up on the key for good, keeping who decided and why."""
        self.connection.execute(_DISCARD, (reason, by, key))

    # -- operators: the ledger by outcome and time --------------------------------------------

    def ledger_page(
        self,
        status: LedgerStatus | str,
        since: datetime,
        until: datetime,
        limit: int,
        after: tuple[datetime, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to `limit` decided ledger rows in `status` claimed in [since, until), newest
        first, after the row whose (created_at, id) is `after`."""
        params: dict[str, Any] = {
            "status": str(status),
            "since": since,
            "until": until,
            "limit": limit,
        }
        query = _LEDGER_FIRST_PAGE
        if after is not None:
            params["after_created_at"], params["after_id"] = after
            query = _LEDGER_NEXT_PAGE
        with self.connection.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(query, params).fetchall()  # type: ignore[arg-type]

    # -- reading many keys (demo, benchmarks, invariant checks) -------------------------------

    def decided_entries(self, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        """The outcomes of those of `keys` that have one."""
        rows = self._all(_DECIDED_ENTRIES, (list(keys),))
        return {row[0]: LedgerEntry(*row) for row in rows}

    def decided_entries_like(self, pattern: str) -> dict[str, LedgerEntry]:
        """The outcomes of keys matching the LIKE `pattern`."""
        return {row[0]: LedgerEntry(*row) for row in self._all(_DECIDED_ENTRIES_LIKE, (pattern,))}

    def delivery_counts(self, keys: Sequence[str]) -> dict[str, int]:
        """How many messages the workers took for each of `keys` (absent: none yet)."""
        return dict(self._all(_DELIVERY_COUNTS, (list(keys),)))

    def delivery_counts_like(self, pattern: str) -> dict[str, int]:
        """How many messages the workers took for each key matching the LIKE `pattern`."""
        return dict(self._all(_DELIVERY_COUNTS_LIKE, (pattern,)))
