"""Several worker processes on one queue (as on several hosts); one is stopped the way
an orchestrator stops it (SIGTERM to its main process) while the others keep working.
Its command in flight finishes (warm shutdown) or comes back to another worker;
nothing is lost, nothing is applied twice."""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.support.commands import new_product, order_for
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.outcomes import await_outcomes, scalar, stock_of

pytestmark = pytest.mark.faults

FIRED = re.compile(r"failpoint \S+ fired for (MANY-\S+) in pid \d+")


def keys_started_by(worker) -> list[str]:
    """Keys whose command this worker's pool reached the failpoint for (its log)."""
    return FIRED.findall(worker.log_text())


def test_one_of_three_workers_stopped_mid_load_loses_and_doubles_nothing(rig, runner, engine):
    skus = [new_product(runner, stock=1000) for _ in range(3)]
    slow = {"ORDERQ_FAILPOINTS": "after_lock=sleep:0.2@MANY-"}
    workers = [rig.worker(concurrency=2, name=f"host{n}", **slow) for n in (1, 2, 3)]
    victim = workers[1]
    commands = [order_for(skus[i % 3], qty=1 + i % 2, key=unique("MANY")) for i in range(90)]
    publisher = rig.publisher()
    for command in commands:
        publisher.publish(command)
    keys = [command.key for command in commands]

    eventually(lambda: keys_started_by(victim), what="the victim worker in a command")
    decided = "SELECT count(*) FROM command_ledger WHERE idempotency_key = ANY(:keys)"
    decided_before_the_stop = scalar(engine, decided, keys=keys)
    os.kill(victim.pid, signal.SIGTERM)  # warm shutdown, like `docker stop` / systemd
    assert victim.process is not None
    victim.process.wait(60)
    statuses = await_outcomes(engine, keys, timeout=120)

    assert victim.process.returncode == 0  # a clean warm shutdown
    assert all(worker.is_running() for worker in (workers[0], workers[2]))
    assert decided_before_the_stop < len(keys) / 2  # it really was mid-load
    assert set(statuses.values()) == {"succeeded"}
    run_by = [set(keys_started_by(worker)) for worker in workers]
    assert all(run_by), "every worker took part"
    assert set().union(*run_by) == set(keys)
    attempts = "SELECT max(attempts) FROM command_ledger WHERE idempotency_key = ANY(:keys)"
    assert scalar(engine, attempts, keys=keys) <= 2  # at most a redelivery, never a loop
    for sku in skus:
        wanted = sum(c.lines[0].qty for c in commands if c.lines[0].sku == sku)
        assert stock_of(engine, sku) == (1000, wanted)
    assert_invariants(engine, Scope(keys, skus))
