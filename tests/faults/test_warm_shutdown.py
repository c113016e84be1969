"""A worker stopped the way an orchestrator stops it (SIGTERM to its main process)
while a batch is in its pool: the batch commits and its messages are acknowledged before
the worker exits — nothing comes back to be delivered again. And SIGTERM to the whole
process group (systemd's default): the batch is cut short, rolled back, and decided once
by the next worker."""

from __future__ import annotations

import os
import signal

import pytest
import redis

from producers.outcomes import lookup
from tests.support.commands import new_product, order_for
from tests.support.ids import unique
from tests.support.outcomes import await_outcome, orders_with_key, scalar, stock_of
from tests.support.rig import SHORT_VISIBILITY

pytestmark = pytest.mark.faults


def an_order_paused_before_its_commit(rig, runner, prefix: str):
    """A worker (one pool process) whose batch will pause before the commit of an order
    of 2 out of 5; returns the worker, the order and its SKU."""
    sku = new_product(runner, stock=5)
    worker = rig.worker(concurrency=1, ORDERQ_FAILPOINTS=f"before_commit=pause@{prefix}-")
    order = order_for(sku, qty=2, key=unique(prefix))
    rig.publisher().publish(order)
    return worker, order, sku


def test_a_batch_in_flight_at_a_warm_shutdown_commits_and_is_acknowledged(rig, runner, engine):
    worker, order, _ = an_order_paused_before_its_commit(rig, runner, "SHUT")

    with worker.failpoints.released_at_exit() as failpoints:
        [paused] = failpoints.wait_for(order.key)  # the batch waits before its commit
        os.kill(worker.pid, signal.SIGTERM)  # warm shutdown, like `docker stop` / systemd
        worker.wait_for_log("worker: Warm shutdown", timeout=30)
        failpoints.release(paused)
        assert worker.process is not None
        worker.process.wait(60)

    assert worker.process.returncode == 0
    assert await_outcome(engine, order.key).status == "succeeded"
    client = redis.Redis.from_url(rig.broker_url)
    try:
        assert client.llen(rig.queue) == 0  # not handed back to the queue
        unacked = client.hvals("unacked")
        assert not any(order.key.encode() in entry for entry in unacked)  # acknowledged
    finally:
        client.close()
    deliveries = "SELECT deliveries FROM command_deliveries WHERE idempotency_key = :k"
    assert scalar(engine, deliveries, k=order.key) == 1


def test_a_group_sigterm_cuts_the_batch_short_and_it_is_decided_once_later(rig, runner, engine):
    # What systemd's default KillMode (control-group) does: every process of the worker
    # gets SIGTERM, the pool processes die at once. Not a warm shutdown, but nothing is
    # lost or applied twice: the next worker decides the command.
    worker, order, sku = an_order_paused_before_its_commit(rig, runner, "CUT")

    with worker.failpoints.released_at_exit() as failpoints:
        failpoints.wait_for(order.key)
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.process is not None
        worker.process.wait(60)
    assert lookup(engine, order.key).status == "running"  # counted, not decided: rolled back

    rig.worker(concurrency=1, name="next", **SHORT_VISIBILITY)
    decided = await_outcome(engine, order.key, timeout=60)

    assert decided.status == "succeeded"
    assert stock_of(engine, sku) == (5, 2)  # the order applied once
    assert orders_with_key(engine, order.key) == 1
