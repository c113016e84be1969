"""The worker's connection pool reports its pressure: size, connections in use, overflow,
checkouts that had to wait, timeouts and how long checkouts took."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, exc

from tests.support.ids import unique
from worker.adapters.engine import build_worker_engine


def value(name: str, application: str) -> float:
    return REGISTRY.get_sample_value(name, {"application": application}) or 0.0


@pytest.fixture
def small_pool(settings) -> Iterator[tuple[Engine, str]]:
    """A worker engine with one connection and one overflow, under its own label."""
    application = unique("pool").lower()
    engine = build_worker_engine(
        settings.model_copy(
            update={
                "application_name": application,
                "pool_size": 1,
                "pool_max_overflow": 1,
                "pool_timeout_seconds": 0.3,
            }
        )
    )
    yield engine, application
    engine.dispose()


def test_size_in_use_and_overflow_follow_the_checkouts(small_pool):
    engine, application = small_pool

    assert value("orderq_db_pool_size", application) == 1
    with engine.connect():
        assert value("orderq_db_pool_checked_out", application) == 1
        assert value("orderq_db_pool_overflow", application) == 0
        with engine.connect():
            assert value("orderq_db_pool_checked_out", application) == 2
            assert value("orderq_db_pool_overflow", application) == 1
        assert value("orderq_db_pool_checked_out", application) == 1
    assert value("orderq_db_pool_checked_out", application) == 0
    assert value("orderq_db_pool_overflow", application) == 0  # the pool is full: one closed
    assert value("orderq_db_pool_checkout_seconds_count", application) == 2
    assert value("orderq_db_pool_waits_total", application) == 0


def test_an_exhausted_pool_counts_the_wait_and_the_timeout(small_pool):
    engine, application = small_pool

    with engine.connect(), engine.connect(), pytest.raises(exc.TimeoutError):
        engine.connect()

    assert value("orderq_db_pool_waits_total", application) == 1
    assert value("orderq_db_pool_timeouts_total", application) == 1
    assert value("orderq_db_pool_checkout_seconds_count", application) == 3
    # the third checkout waited the whole pool timeout before giving up
    assert value("orderq_db_pool_checkout_seconds_sum", application) >= 0.3


def test_a_forked_child_disposing_the_pool_keeps_reporting(small_pool):
    engine, application = small_pool
    before = value("orderq_db_pool_checkout_seconds_count", application)

    engine.dispose(close=False)  # what a prefork child does after the fork
    with engine.connect():
        assert value("orderq_db_pool_checked_out", application) == 1

    assert value("orderq_db_pool_checkout_seconds_count", application) == before + 1
