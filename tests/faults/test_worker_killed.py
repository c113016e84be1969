"""A worker process killed in the middle of a command: redelivered, applied once."""

from __future__ import annotations

import psutil
import pytest

from producers.commands import CheckoutCopy
from producers.outcomes import lookup
from tests.support.commands import new_product, order_for
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.library import copy_status, loans_of_copy, new_member, new_work
from tests.support.outcomes import await_deliveries, await_outcomes, scalar, stock_of
from tests.support.rig import SHORT_VISIBILITY, sigkill

pytestmark = pytest.mark.faults


def in_transaction(engine, application_name: str) -> int:
    return scalar(
        engine,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND state = 'idle in transaction'",
        name=application_name,
    )


def test_pool_process_killed_holding_row_locks_is_redelivered_and_applied_once(rig, runner, engine):
    sku = new_product(runner, stock=5)
    worker = rig.worker(ORDERQ_FAILPOINTS="after_lock=pause*1@KILLED-")
    victim = order_for(sku, qty=2, key=unique("KILLED"))
    others = [order_for(sku) for _ in range(3)]
    publisher = rig.publisher()

    publisher.publish(victim)
    [hit] = worker.failpoints.wait_for(victim.key)
    assert in_transaction(engine, rig.application_name) == 1  # it holds the stock row lock
    for command in others:
        publisher.publish(command)
    wait_until_waiting_on(engine, rig.application_name, sessions=1)  # the next one queues
    sigkill(hit.pid)
    keys = [victim.key, *(c.key for c in others)]
    statuses = await_outcomes(engine, keys, timeout=60)

    assert set(statuses.values()) == {"succeeded"}
    ledger_attempts = "SELECT attempts FROM command_ledger WHERE idempotency_key = :k"
    assert scalar(engine, ledger_attempts, k=victim.key) == 2
    assert stock_of(engine, sku) == (5, 5)
    assert worker.is_running()
    assert_invariants(engine, Scope(keys, [sku]))


def wait_until_waiting_on(engine, application_name: str, sessions: int) -> None:
    """Return once `sessions` other sessions wait for the locks of the one worker
    session that sits idle in its transaction."""
    eventually(
        lambda: scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity w, pg_stat_activity h "
            "WHERE h.application_name = :name AND h.state = 'idle in transaction' "
            "AND h.pid = ANY(pg_blocking_pids(w.pid))",
            name=application_name,
        ),
        until=lambda waiting: waiting >= sessions,
        what=f"{sessions} session(s) queued on the locks of the stuck command",
        timeout=20,
    )


def gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_checkout_killed_holding_its_locks_is_applied_once_no_double_loan(rig, runner, engine):
    """The pool process dies in a checkout while it holds the member's and the copy's
    row locks; a duplicate of the same key waits on its ledger row and the member's
    next checkout on the member row. The duplicate lends the copy, the redelivery
    replays that loan: one loan per key, one per copy, the member at the limit."""
    member = new_member(runner, loan_limit=2)
    _, (first, second) = new_work(runner, copies=2)
    worker = rig.worker(concurrency=3, ORDERQ_FAILPOINTS="after_lock=pause*1@KILLCO-")
    victim = CheckoutCopy(key=unique("KILLCO"), member=member, barcode=first)
    queued_behind = CheckoutCopy(key=unique("NEXTCO"), member=member, barcode=second)
    publisher = rig.publisher()

    publisher.publish(victim)
    [hit] = worker.failpoints.wait_for(victim.key)
    publisher.publish(victim)  # a concurrent duplicate: blocks on the claimed key
    publisher.publish(queued_behind)  # blocks on the member row
    wait_until_waiting_on(engine, rig.application_name, sessions=2)
    sigkill(hit.pid)
    statuses = await_outcomes(engine, [victim.key, queued_behind.key], timeout=60)
    # the killed delivery comes back too: killed, duplicate, redelivery
    await_deliveries(engine, victim.key, 3)

    assert statuses == {victim.key: "succeeded", queued_behind.key: "succeeded"}
    loans = "SELECT count(*) FROM loans WHERE idempotency_key = :k"
    assert scalar(engine, loans, k=victim.key) == 1
    [loan] = loans_of_copy(engine, first)
    assert loan["member"] == member
    assert lookup(engine, victim.key).result["loan_id"] == loan["id"]  # the outcome: that loan
    assert [copy_status(engine, first), copy_status(engine, second)] == ["on_loan"] * 2
    assert worker.is_running()
    assert_invariants(engine, Scope([victim.key, queued_behind.key], barcodes=[first, second]))


def test_whole_worker_killed_messages_return_after_the_visibility_timeout(rig, runner, engine):
    """SIGKILL of the main process too: nobody is left to requeue the message, so Redis
    keeps it unacknowledged until the visibility timeout (short here) has passed and
    another worker's sweep puts it back."""
    sku = new_product(runner, stock=5)
    first = rig.worker(
        name="doomed", ORDERQ_FAILPOINTS="after_lock=pause*1@WHOLE-", **SHORT_VISIBILITY
    )
    victim = order_for(sku, qty=1, key=unique("WHOLE"))
    rig.publisher().publish(victim)
    first.failpoints.wait_for(victim.key)

    first.kill()
    rig.worker(name="successor", **SHORT_VISIBILITY)
    statuses = await_outcomes(engine, [victim.key], timeout=30)

    assert statuses[victim.key] == "succeeded"
    ledger_attempts = "SELECT attempts FROM command_ledger WHERE idempotency_key = :k"
    assert scalar(engine, ledger_attempts, k=victim.key) == 2  # the kill did cut attempt 1
    assert stock_of(engine, sku) == (5, 1)
    assert_invariants(engine, Scope([victim.key], [sku]))


def test_command_past_the_hard_time_limit_is_requeued_not_acknowledged(rig, runner, engine):
    """A command stuck where the soft time limit cannot interrupt it is killed by the
    hard limit. Celery would acknowledge (lose) its message; orderq requeues it."""
    sku = new_product(runner, stock=5)
    worker = rig.worker(
        ORDERQ_FAILPOINTS="after_lock=hang*1@HUNG-",
        ORDERQ_TASK_TIME_LIMIT_SECONDS="3",
        ORDERQ_TASK_SOFT_TIME_LIMIT_SECONDS="2",
    )
    stuck = order_for(sku, qty=1, key=unique("HUNG"))
    rig.publisher().publish(stuck)
    [hung] = worker.failpoints.wait_for(stuck.key)

    statuses = await_outcomes(engine, [stuck.key], timeout=30)

    assert statuses[stuck.key] == "succeeded"
    assert gone(hung.pid)  # nothing but the hard limit ends a hang
    ledger_attempts = "SELECT attempts FROM command_ledger WHERE idempotency_key = :k"
    assert scalar(engine, ledger_attempts, k=stuck.key) == 2
    assert_invariants(engine, Scope([stuck.key], [sku]))
