"""When every pooled connection is busy, a command waits, then gives a clear transient
error, and completes once connections are free again."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest
from sqlalchemy.orm import sessionmaker

from producers.database import build_engine
from producers.outcomes import lookup
from tests.support.commands import new_product, order_for
from worker.adapters.errors import ErrorKind, classify
from worker.service.runner import CommandRunner, RetryLater


def small_pool_runner(settings, timeout: float):
    engine = build_engine(settings, pool_size=2, max_overflow=0, pool_timeout=timeout)
    return engine, CommandRunner(
        settings, engine, sessionmaker(bind=engine, expire_on_commit=False)
    )


def hold_every_connection(stack: ExitStack, engine) -> None:
    for _ in range(engine.pool.size()):
        stack.enter_context(engine.connect())


def test_exhausted_pool_times_out_as_a_transient_error_then_completes(runner, engine, settings):
    sku = new_product(runner, stock=3)
    small, small_runner = small_pool_runner(settings, timeout=0.5)
    command = order_for(sku)
    try:
        with ExitStack() as held:
            hold_every_connection(held, small)
            result = small_runner.run(command.message(), command.type)

            assert isinstance(result, RetryLater)
            assert "QueuePool limit of size 2 overflow 0 reached" in result.error
            assert lookup(engine, command.key).status == "unknown"  # nothing was written

        # connections are back: the retry goes through
        outcome = small_runner.run(command.message(), command.type, retries=1)
    finally:
        small.dispose()
    assert outcome.status == "succeeded"


def test_a_command_waits_for_a_connection_instead_of_failing(runner, engine, settings):
    sku = new_product(runner, stock=3)
    small, small_runner = small_pool_runner(settings, timeout=60)
    command = order_for(sku)
    results = []
    try:
        with ExitStack() as held:
            hold_every_connection(held, small)
            waiting = threading.Thread(
                target=lambda: results.append(small_runner.run(command.message(), command.type))
            )
            waiting.start()
            waiting.join(1.0)
            assert waiting.is_alive() and not results  # blocked on the pool
            assert lookup(engine, command.key).status == "unknown"
        waiting.join(30)
    finally:
        small.dispose()
    [outcome] = results
    assert outcome.status == "succeeded"


def test_pool_timeout_is_classified_as_transient(settings):
    small = build_engine(settings, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        with small.connect(), pytest.raises(Exception) as raised, small.connect():
            pass
    finally:
        small.dispose()
    assert classify(raised.value) is ErrorKind.TRANSIENT
