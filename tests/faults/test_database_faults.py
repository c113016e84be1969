"""The database misbehaves under a running worker: connections terminated, the server
unreachable, a row lock held past the lock timeout."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.support.commands import new_product, order_for
from tests.support.environment import TEST_DATABASE_URL
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.outcomes import await_outcomes, scalar, stock_of
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults

MOST_ATTEMPTS = "SELECT max(attempts) FROM command_ledger WHERE idempotency_key = ANY(:keys)"


def ran_again(engine, worker, settings, key_prefix: str, keys: list[str]) -> bool:
    """The cut command ran again and then committed: unbatched as attempt 2 (a retry);
    batched as the same attempt, alone, after its batch's transaction failed — the
    failpoint it paused at fired twice."""
    if settings.batch_max_size > 1:
        return len(worker.failpoints.hits(key_prefix)) >= 2
    return scalar(engine, MOST_ATTEMPTS, keys=keys) >= 2


def test_worker_connections_terminated_mid_command(rig, runner, engine, settings):
    sku = new_product(runner, stock=10)
    worker = rig.worker(ORDERQ_FAILPOINTS="after_lock=pause*1@TERM-")
    commands = [order_for(sku, key=unique("TERM")) for _ in range(4)]
    publisher = rig.publisher()
    for command in commands:
        publisher.publish(command)
    with worker.failpoints.released_at_exit():
        worker.failpoints.wait_for("TERM-")  # a command holds its row locks, mid-transaction
        terminated = scalar(
            engine,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :name",
            name=rig.application_name,
        )
    keys = [command.key for command in commands]
    statuses = await_outcomes(engine, keys, timeout=60)

    assert terminated >= 1
    assert set(statuses.values()) == {"succeeded"}
    assert ran_again(engine, worker, settings, "TERM-", keys)  # the paused transaction was cut
    assert stock_of(engine, sku) == (10, 4)
    assert_invariants(engine, Scope(keys, [sku]))


def test_database_unreachable_for_a_few_seconds(rig, runner, engine, settings):
    """The outage cuts a command mid-transaction (held at a failpoint until the database
    is back) and hits commands delivered while it lasts: all apply once afterwards."""
    target = make_url(TEST_DATABASE_URL)
    sku = new_product(runner, stock=50)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        through_proxy = target.set(port=proxy.port).render_as_string(hide_password=False)
        worker = rig.worker(DATABASE_URL=through_proxy, ORDERQ_FAILPOINTS="after_lock=pause*1@CUT-")
        publisher = rig.publisher()
        cut = order_for(sku, key=unique("CUT"))
        before = [cut, *(order_for(sku, key=unique("UNREACH")) for _ in range(10))]
        for command in before:
            publisher.publish(command)
        with worker.failpoints.released_at_exit():
            worker.failpoints.wait_for(cut.key)  # holds the stock row lock, mid-transaction

            proxy.cut()
            during = [order_for(sku, key=unique("UNREACH")) for _ in range(5)]
            for command in during:
                publisher.publish(command)
            time.sleep(3)  # the outage itself: how long the database stays away (no barrier)
            proxy.restore()
        keys = [command.key for command in before + during]
        statuses = await_outcomes(engine, keys, timeout=60)

    assert set(statuses.values()) == {"succeeded"}
    assert ran_again(engine, worker, settings, cut.key, [cut.key])  # its transaction was cut
    assert stock_of(engine, sku) == (50, 16)
    assert_invariants(engine, Scope(keys, [sku]))


def test_lock_held_past_the_lock_timeout_is_retried_until_free(rig, runner, engine):
    sku = new_product(runner, stock=3)
    rig.worker(ORDERQ_LOCK_TIMEOUT_MS="200")
    command = order_for(sku, key=unique("LOCKED"))
    last_error = "SELECT last_error FROM command_deliveries WHERE idempotency_key = :k"

    with engine.connect() as blocker:
        blocker.execute(
            text(
                "SELECT 1 FROM stock_levels s JOIN products p ON p.id = s.product_id "
                "WHERE p.sku = :sku FOR UPDATE OF s"
            ),
            {"sku": sku},
        )
        rig.publisher().publish(command)
        eventually(
            lambda: scalar(engine, last_error, k=command.key) or "",
            until=lambda error: "55P03" in error,
            what="the worker's lock timeout (55P03) recorded for the command",
        )
        blocker.rollback()
    statuses = await_outcomes(engine, [command.key], timeout=30)

    assert statuses[command.key] == "succeeded"
    assert scalar(engine, MOST_ATTEMPTS, keys=[command.key]) >= 2
    assert stock_of(engine, sku) == (3, 1)
