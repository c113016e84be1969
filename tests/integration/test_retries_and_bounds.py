"""The error taxonomy on the real database: what is retried, how often, and what ends
as a dead letter. Runs the worker's own runner in-process with failpoints."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from producers.database import build_engine
from producers.outcomes import lookup
from tests.support.commands import new_product, order_for
from tests.support.environment import TEST_DATABASE_URL
from tests.support.ids import unique
from tests.support.outcomes import scalar, stock_of
from tests.support.tcp_proxy import TcpProxy
from worker.adapters.deliveries import DeliveryLog
from worker.adapters.errors import ErrorKind, classify
from worker.service.failpoints import Failpoints
from worker.service.outcome import Outcome
from worker.service.runner import CommandRunner, RetryLater

DELIVERY = "SELECT state, attempts FROM command_deliveries WHERE idempotency_key = :k"
ORDERS = "SELECT count(*) FROM orders WHERE idempotency_key = :k"


@pytest.fixture
def faulty(settings, engine, session_factory):
    """A runner with the failpoints a test names."""

    def make(spec: str, **overrides) -> CommandRunner:
        return CommandRunner(
            settings.model_copy(update=overrides), engine, session_factory, Failpoints(spec)
        )

    return make


def deliver_until_done(runner: CommandRunner, command, limit: int = 20) -> list:
    """Deliver `command` again after every RetryLater, as the broker would."""
    results = []
    for retries in range(limit):
        result = runner.run(command.message(), command.type, retries=retries)
        results.append(result)
        if not isinstance(result, RetryLater):
            return results
    raise AssertionError(f"still retrying after {limit} deliveries")


def row(engine, key):
    with engine.connect() as connection:
        return tuple(connection.execute(text(DELIVERY), {"k": key}).one())


def test_a_transient_failure_is_retried_and_then_succeeds(faulty, runner, engine):
    sku = new_product(runner, stock=4)
    command = order_for(sku, key=unique("FLAKY"))

    results = deliver_until_done(faulty("before_commit=raise*1@FLAKY-"), command)

    assert isinstance(results[0], RetryLater)
    assert "injected fault" in results[0].error
    assert results[-1].status == "succeeded"
    assert (
        scalar(
            engine, "SELECT attempts FROM command_ledger WHERE idempotency_key = :k", k=command.key
        )
        == 2
    )
    assert stock_of(engine, sku) == (4, 1)


def test_transient_failures_give_up_after_max_attempts_as_a_dead_letter(faulty, runner, engine):
    sku = new_product(runner, stock=4)
    command = order_for(sku, key=unique("ALWAYS"))

    results = deliver_until_done(faulty("before_commit=raise@ALWAYS-", max_attempts=4), command)

    assert [type(r).__name__ for r in results] == ["RetryLater"] * 3 + ["Outcome"]
    assert results[-1].status == "failed"
    assert row(engine, command.key) == ("failed", 4)
    status = lookup(engine, command.key)
    assert status.status == "failed"
    assert "gave up after 4 attempts: transient error" in status.message
    assert scalar(engine, ORDERS, k=command.key) == 0
    assert stock_of(engine, sku) == (4, 0)


def test_unknown_errors_give_up_sooner_than_transient_ones(faulty, runner, engine):
    sku = new_product(runner, stock=4)
    command = order_for(sku, key=unique("BUG"))

    runner_with_bug = faulty("after_lock=bug@BUG-", max_attempts=5, max_unknown_error_attempts=2)
    results = deliver_until_done(runner_with_bug, command)

    assert len(results) == 2
    assert results[-1].status == "failed"
    assert "unknown error: InjectedBug" in lookup(engine, command.key).message


def test_a_dead_letter_is_not_run_again_and_keeps_its_error(faulty, runner, engine):
    sku = new_product(runner, stock=4)
    command = order_for(sku, key=unique("DEAD"))
    deliver_until_done(faulty("before_commit=raise@DEAD-", max_attempts=2), command)
    first_error = lookup(engine, command.key).message

    again = runner.run(command.message(), command.type)  # a healthy worker, a late copy

    assert again.status == "failed"
    assert row(engine, command.key) == ("failed", 2)
    assert lookup(engine, command.key).message == first_error
    assert scalar(engine, ORDERS, k=command.key) == 0


def test_duplicates_of_a_decided_key_use_up_no_attempts(runner, engine, settings):
    sku = new_product(runner, stock=4)
    command = order_for(sku, key=unique("DUP"))

    outcomes = [
        runner.run(command.message(), command.type) for _ in range(settings.max_attempts + 3)
    ]

    assert {o.status for o in outcomes} == {"succeeded"}
    assert len({o.result["order_number"] for o in outcomes}) == 1
    assert [o.replayed for o in outcomes] == [False] + [True] * (len(outcomes) - 1)
    assert row(engine, command.key) == ("running", 1)


def test_a_command_whose_worker_keeps_dying_is_dead_lettered(runner, engine, settings):
    """Simulates deliveries that were counted but never finished (process killed)."""
    sku = new_product(runner, stock=4)
    command = order_for(sku, key=unique("DIES"))
    log = DeliveryLog(engine)
    for _ in range(settings.max_attempts):
        log.record_attempt(command.key, command.type, command.fingerprint(), command.message())

    outcome = runner.run(command.message(), command.type)

    assert outcome.status == "failed"
    assert "none finished" in outcome.message
    assert row(engine, command.key) == ("failed", settings.max_attempts + 1)
    assert scalar(engine, ORDERS, k=command.key) == 0


def test_a_real_unique_violation_on_the_ledger_key_is_a_duplicate(engine):
    key = unique("LEDGER")
    insert = text(
        "INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status) "
        "VALUES (:k, 'place_order', repeat('a', 64), 'processing')"
    )
    with engine.connect() as connection:
        connection.execute(insert, {"k": key})
        with pytest.raises(Exception) as violation:
            connection.execute(insert, {"k": key})
        connection.rollback()

    assert classify(violation.value) is ErrorKind.DUPLICATE


def test_database_unreachable_means_retry_later_not_a_crash(settings, session_factory, caplog):
    dead_engine = build_engine(
        settings, url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere", pool_pre_ping=False
    )
    lonely = CommandRunner(settings, dead_engine, session_factory)
    command = order_for("ANY-SKU", key=unique("DOWN"))
    try:
        results = [lonely.run(command.message(), command.type, retries=r) for r in range(6)]
    finally:
        dead_engine.dispose()

    # No attempt can be counted, so no bound applies: it waits for the database.
    assert all(isinstance(r, RetryLater) for r in results)
    assert "OperationalError" in results[0].error


def test_an_unknown_bookkeeping_error_is_bounded_and_dropped_loudly(
    settings, session_factory, caplog
):
    """A database without orderq's tables: counting fails with an error that is not
    transient. It is retried a bounded number of times, then dropped with a CRITICAL log."""
    empty = build_engine(
        settings,
        url=make_url(TEST_DATABASE_URL)
        .set(database="postgres")
        .render_as_string(hide_password=False),
    )
    confused = CommandRunner(settings, empty, session_factory)
    command = order_for("ANY-SKU", key=unique("NOTABLE"))
    try:
        with caplog.at_level(logging.CRITICAL, logger="worker.service.runner"):
            results = [confused.run(command.message(), command.type, retries=r) for r in range(5)]
    finally:
        empty.dispose()

    limit = settings.max_unknown_error_attempts
    assert all(isinstance(r, RetryLater) for r in results[: limit - 1])
    assert isinstance(results[limit - 1], Outcome)
    assert results[limit - 1].status == "failed"
    assert f"DROPPED {command.key}" in caplog.text


def test_a_database_that_stops_answering_is_a_retry_not_a_hang(settings, session_factory):
    """Connections are accepted but never answered: the connect timeout turns that into
    a transient error instead of a worker stuck for minutes."""
    target = make_url(TEST_DATABASE_URL)
    if target.query.get("host"):
        pytest.skip("needs a TCP connection to PostgreSQL (the embedded one is a Unix socket)")
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxy.blackhole()
        silent = build_engine(
            settings.model_copy(update={"db_connect_timeout_seconds": 1}),
            url=target.set(port=proxy.port).render_as_string(hide_password=False),
        )
        stalled = CommandRunner(settings, silent, session_factory)
        command = order_for("ANY-SKU", key=unique("SILENT"))
        try:
            result = stalled.run(command.message(), command.type)
        finally:
            silent.dispose()

    assert isinstance(result, RetryLater)
    assert "timeout" in result.error.lower()
