"""A command that kills its worker process every time is quarantined, not looped on."""

from __future__ import annotations

import pytest

from orderq.admin.dead_letters import DeadLetters
from producers.outcomes import lookup
from tests.support.commands import new_product, order_for
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.outcomes import await_outcomes, deliveries_of, scalar, stock_of

pytestmark = pytest.mark.faults


def test_poison_command_fails_after_max_attempts_while_others_flow(rig, runner, engine):
    sku = new_product(runner, stock=20)
    worker = rig.worker(ORDERQ_FAILPOINTS="before_commit=kill@POISON-", ORDERQ_MAX_ATTEMPTS="3")
    poison = order_for(sku, qty=5, key=unique("POISON"))
    others = [order_for(sku, key=unique("FINE")) for _ in range(10)]
    publisher = rig.publisher()
    publisher.publish(poison)
    for command in others:
        publisher.publish(command)

    keys = [poison.key, *(command.key for command in others)]
    statuses = await_outcomes(engine, keys, timeout=90)

    assert statuses.pop(poison.key) == "failed"
    assert set(statuses.values()) == {"succeeded"}
    dead = DeadLetters(engine).get(poison.key)
    assert dead.state == "failed"
    assert dead.payload == poison.message()
    assert "none finished" in (lookup(engine, poison.key).message or "")
    # killed in attempts 1, 2 and 3; the fourth delivery refused to run it
    assert [hit.attempt for hit in worker.failpoints.hits(poison.key)] == [1, 2, 3]
    assert deliveries_of(engine, poison.key) == 4
    orders = "SELECT count(*) FROM orders WHERE idempotency_key = :k"
    assert scalar(engine, orders, k=poison.key) == 0
    assert stock_of(engine, sku) == (20, 10)
    assert worker.is_running()
    assert_invariants(engine, Scope(keys, [sku]))
