"""A pool process killed in the middle of a batch: every message of the batch is
decided again, one at a time, and applied once (worker/entrypoints/batching.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.commands import new_product, order_for
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.outcomes import await_outcomes, orders_with_key, stock_of

pytestmark = pytest.mark.faults


def test_a_batch_killed_before_its_commit_is_decided_again_one_by_one_and_applied_once(
    rig, runner, engine
):
    sku = new_product(runner, stock=20)
    victim = order_for(sku, qty=2, key=unique("KILLED"))
    commands = [order_for(sku) for _ in range(4)] + [victim] + [order_for(sku) for _ in range(4)]
    publisher = rig.publisher()
    for command in commands:  # queued before the worker starts: they form one batch
        publisher.publish(command)
    # one pool process that waits up to a second for company: the nine messages go to
    # the pool together, and the victim's first attempt kills it before the commit
    worker = rig.worker(
        concurrency=1,
        ORDERQ_BATCH_MAX_WAIT_MS="1000",
        ORDERQ_FAILPOINTS="before_commit=kill*1@KILLED-",
    )
    keys = [command.key for command in commands]

    statuses = await_outcomes(engine, keys, timeout=90)

    assert set(statuses.values()) == {"succeeded"}
    assert worker.failpoints.hits(victim.key)  # the batch really was killed
    counts = """
        SELECT deliveries, attempts FROM command_deliveries WHERE idempotency_key = ANY(:k)
    """
    with engine.connect() as connection:
        rows = connection.execute(text(counts), {"k": keys}).all()
    # the whole batch ran again: every key counted twice, decided once
    assert sorted(tuple(row) for row in rows) == [(2, 2)] * len(keys)
    assert [orders_with_key(engine, key) for key in keys] == [1] * len(keys)
    assert stock_of(engine, sku) == (20, 10)
    assert worker.is_running()
    assert_invariants(engine, Scope(keys, [sku]))
