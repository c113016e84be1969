"""Driver errors translated in one place: transient, duplicate or unknown.

- transient: retry the whole command with backoff (serialization failure, deadlock,
  lock/statement timeout, lost connection, server shutting down, pool exhausted,
  stale optimistic-lock version);
- duplicate: a concurrent delivery of the same key committed first — replay it;
- unknown: anything else — retried a bounded number of times, then `failed`.
"""

from __future__ import annotations

from enum import StrEnum

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

LEDGER_KEY_CONSTRAINT = "uq_command_ledger_idempotency_key"
#: Unique constraints on business rows that carry the command's idempotency key: they
#: keep deduplicating after the key's ledger row was purged.
BUSINESS_KEY_CONSTRAINTS = frozenset({"uq_orders_idempotency_key", "uq_loans_idempotency_key"})

TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
        "57014",  # query_canceled (statement_timeout)
        "57P01",  # admin_shutdown (pg_terminate_backend, restart)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up)
        "53300",  # too_many_connections
        "25P03",  # idle_in_transaction_session_timeout
    }
)


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"


class TransientError(Exception):
    """Raised by orderq itself for a condition that a later attempt may not meet."""


def sqlstate_of(error: BaseException) -> str | None:
    original = getattr(error, "orig", error)
    return getattr(original, "sqlstate", None)


def constraint_of(error: BaseException) -> str | None:
    original = getattr(error, "orig", error)
    diag = getattr(original, "diag", None)
    return getattr(diag, "constraint_name", None)


def classify(error: BaseException) -> ErrorKind:
    """Decide what a failed attempt means for the command."""
    if isinstance(error, TransientError | StaleDataError | sa_exc.TimeoutError):
        return ErrorKind.TRANSIENT
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return ErrorKind.TRANSIENT
    state = sqlstate_of(error)
    if state == "23505" and constraint_of(error) == LEDGER_KEY_CONSTRAINT:
        return ErrorKind.DUPLICATE
    if state in TRANSIENT_SQLSTATES or (state or "").startswith("08"):
        return ErrorKind.TRANSIENT
    original = getattr(error, "orig", error)
    if state is None and isinstance(original, psycopg.OperationalError | psycopg.InterfaceError):
        return ErrorKind.TRANSIENT  # connection refused / server gone: no SQLSTATE at all
    return ErrorKind.UNKNOWN


def is_business_key_duplicate(error: BaseException) -> bool:
    """A unique violation on a business row's idempotency key (see BUSINESS_KEY_CONSTRAINTS)."""
    return sqlstate_of(error) == "23505" and constraint_of(error) in BUSINESS_KEY_CONSTRAINTS


def describe(error: BaseException) -> str:
    """A short, parameter-free description for logs and the dead-letter store."""
    state = sqlstate_of(error)
    original = getattr(error, "orig", error)
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    prefix = f"{type(original).__name__}"
    if state:
        prefix += f" [{state}]"
    return f"{prefix}: {text}"[:500]
