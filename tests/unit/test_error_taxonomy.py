"""Driver errors sorted into transient / duplicate / unknown, and the retry pacing."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from worker.adapters.errors import ErrorKind, TransientError, classify
from worker.service.failpoints import InjectedBug, InjectedFault
from worker.service.runner import backoff_delay


def wrapped(error: Exception) -> sa_exc.DBAPIError:
    """The error as SQLAlchemy raises it around a driver error."""
    return sa_exc.DBAPIError.instance("SELECT 1", {}, error, psycopg.Error)


@pytest.mark.parametrize(
    "driver_error",
    [
        pg_errors.SerializationFailure(),  # 40001
        pg_errors.DeadlockDetected(),  # 40P01
        pg_errors.LockNotAvailable(),  # 55P03, lock_timeout
        pg_errors.QueryCanceled(),  # 57014, statement_timeout
        pg_errors.AdminShutdown(),  # 57P01, pg_terminate_backend
        pg_errors.CannotConnectNow(),  # 57P03
        pg_errors.ConnectionFailure(),  # 08006
        pg_errors.IdleInTransactionSessionTimeout(),  # 25P03
        psycopg.OperationalError("connection refused"),  # no SQLSTATE at all
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_driver_errors(driver_error):
    assert classify(wrapped(driver_error)) is ErrorKind.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        StaleDataError("version mismatch"),
        sa_exc.TimeoutError("QueuePool limit reached"),  # pool checkout timeout
        TransientError("ledger row has no outcome yet"),
        InjectedFault("failpoint"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_orderq_and_sqlalchemy_errors(error):
    assert classify(error) is ErrorKind.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        wrapped(pg_errors.DivisionByZero()),
        wrapped(pg_errors.UndefinedTable()),
        wrapped(pg_errors.UniqueViolation()),  # some other unique index: not the ledger's
        wrapped(pg_errors.CheckViolation()),
        InjectedBug("failpoint"),
        KeyError("bug"),
    ],
    ids=lambda e: type(getattr(e, "orig", e)).__name__,
)
def test_everything_else_is_unknown(error):
    assert classify(error) is ErrorKind.UNKNOWN


def test_backoff_doubles_up_to_the_cap_with_jitter():
    delays = {
        attempt: [backoff_delay(attempt, 1.0, 8.0) for _ in range(200)]
        for attempt in (1, 2, 3, 4, 9)
    }

    assert all(0.5 <= d <= 1.0 for d in delays[1])
    assert all(1.0 <= d <= 2.0 for d in delays[2])
    assert all(2.0 <= d <= 4.0 for d in delays[3])
    assert all(4.0 <= d <= 8.0 for d in delays[4])
    assert all(4.0 <= d <= 8.0 for d in delays[9])  # capped
    assert len(set(delays[3])) > 100  # jittered, not one synchronized wave
