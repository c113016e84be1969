"""Redis restarted while commands are queued and in flight (a private redis-server)."""

from __future__ import annotations

import pytest

from tests.support.commands import new_product, order_for
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.outcomes import await_outcomes, scalar, stock_of
from tests.support.redis_server import PrivateRedis
from tests.support.rig import SHORT_VISIBILITY, FaultRig

pytestmark = pytest.mark.faults


def test_broker_restart_with_commands_queued_and_in_flight(migrated_database, runner, engine):
    """Queued messages survive in Redis' append-only file. Messages in flight: the worker
    cancels them when the connection drops (their transactions roll back) and Redis
    hands them out again once the visibility timeout has passed."""
    sku = new_product(runner, stock=100)
    with PrivateRedis() as broker:
        rig = FaultRig(broker_url=broker.url)
        try:
            # every command takes 0.3 s, so some are always in flight (a load, no barrier)
            worker = rig.worker(
                ORDERQ_FAILPOINTS="after_lock=sleep:0.3@RESTART-", **SHORT_VISIBILITY
            )
            commands = [order_for(sku, key=unique("RESTART")) for _ in range(20)]
            publisher = rig.publisher()
            for command in commands:
                publisher.publish(command)
            worker.failpoints.wait_for("RESTART-")  # a command is mid-transaction

            broker.restart(down_for=1.0)
            keys = [command.key for command in commands]
            statuses = await_outcomes(engine, keys, timeout=60)

            assert set(statuses.values()) == {"succeeded"}
            most = "SELECT max(deliveries) FROM command_deliveries WHERE idempotency_key = ANY(:k)"
            assert scalar(engine, most, k=keys) >= 2  # what was in flight came back
            assert stock_of(engine, sku) == (100, 20)
            assert worker.is_running()
            assert_invariants(engine, Scope(keys, [sku]))
        finally:
            rig.close()
