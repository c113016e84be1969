"""A worker process killed in the middle of a command: redelivered, applied once."""

from __future__ import annotations

import time

import pytest

from producers.commands import CheckoutCopy
from tests.support.commands import new_product, order_for
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.library import copy_status, loans_of_copy, new_member, new_work, task_returns
from tests.support.outcomes import await_outcomes, scalar, stock_of
from tests.support.rig import SHORT_VISIBILITY, sigkill, wait_for_failpoint

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
    worker = rig.worker(ORDERQ_FAILPOINTS="after_lock=sleep:60*1@KILLED-")
    victim = order_for(sku, qty=2, key=unique("KILLED"))
    others = [order_for(sku) for _ in range(3)]
    publisher = rig.publisher()

    publisher.publish(victim)
    pid = wait_for_failpoint(worker, victim.key)
    assert in_transaction(engine, rig.application_name) == 1  # it holds the stock row lock
    for command in others:
        publisher.publish(command)
    sigkill(pid)
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
    deadline = time.monotonic() + 20
    while (
        scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity w, pg_stat_activity h "
            "WHERE h.application_name = :name AND h.state = 'idle in transaction' "
            "AND h.pid = ANY(pg_blocking_pids(w.pid))",
            name=application_name,
        )
        < sessions
    ):
        assert time.monotonic() < deadline, f"{sessions} sessions never queued on the locks"
        time.sleep(0.05)


def test_checkout_killed_holding_its_locks_is_applied_once_no_double_loan(rig, runner, engine):
    """The pool process dies in a checkout while it holds the member's and the copy's
    row locks; a duplicate of the same key waits on its ledger row and the member's
    next checkout on the member row. The duplicate lends the copy, the redelivery
    replays that loan: one loan per key, one per copy, the member at the limit."""
    member = new_member(runner, loan_limit=2)
    _, (first, second) = new_work(runner, copies=2)
    worker = rig.worker(concurrency=3, ORDERQ_FAILPOINTS="after_lock=sleep:60*1@KILLCO-")
    victim = CheckoutCopy(key=unique("KILLCO"), member=member, barcode=first)
    queued_behind = CheckoutCopy(key=unique("NEXTCO"), member=member, barcode=second)
    publisher = rig.publisher()

    publisher.publish(victim)
    pid = wait_for_failpoint(worker, victim.key)
    publisher.publish(victim)  # a concurrent duplicate: blocks on the claimed key
    publisher.publish(queued_behind)  # blocks on the member row
    wait_until_waiting_on(engine, rig.application_name, sessions=2)
    sigkill(pid)
    statuses = await_outcomes(engine, [victim.key, queued_behind.key], timeout=60)
    deadline = time.monotonic() + 30
    while len(returns := task_returns(worker.log_text(), victim)) < 2:  # + the redelivery
        assert time.monotonic() < deadline, f"the killed delivery never came back: {returns}"
        time.sleep(0.1)

    assert statuses == {victim.key: "succeeded", queued_behind.key: "succeeded"}
    assert sorted(r["replayed"] for r in returns) == [False, True]
    assert returns[0]["result"] == returns[1]["result"]  # the same loan, twice
    loans = "SELECT count(*) FROM loans WHERE idempotency_key = :k"
    assert scalar(engine, loans, k=victim.key) == 1
    assert [loan["member"] for loan in loans_of_copy(engine, first)] == [member]
    assert [copy_status(engine, first), copy_status(engine, second)] == ["on_loan"] * 2
    assert worker.is_running()
    assert_invariants(engine, Scope([victim.key, queued_behind.key], barcodes=[first, second]))


def test_whole_worker_killed_messages_return_after_the_visibility_timeout(rig, runner, engine):
    """SIGKILL of the main process too: nobody is left to requeue the message, so Redis
    keeps it unacknowledged until the visibility timeout (short here) has passed and
    another worker's sweep puts it back."""
    sku = new_product(runner, stock=5)
    first = rig.worker(
        name="doomed", ORDERQ_FAILPOINTS="after_lock=sleep:2.5*1@WHOLE-", **SHORT_VISIBILITY
    )
    victim = order_for(sku, qty=1, key=unique("WHOLE"))
    rig.publisher().publish(victim)
    wait_for_failpoint(first, victim.key)

    first.kill()
    rig.worker(name="successor", **SHORT_VISIBILITY)
    statuses = await_outcomes(engine, [victim.key], timeout=30)

    assert statuses[victim.key] == "succeeded"
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

    statuses = await_outcomes(engine, [stuck.key], timeout=30)

    assert statuses[stuck.key] == "succeeded"
    assert "Hard time limit (3" in worker.log_text()
    ledger_attempts = "SELECT attempts FROM command_ledger WHERE idempotency_key = :k"
    assert scalar(engine, ledger_attempts, k=stuck.key) == 2
    assert_invariants(engine, Scope([stuck.key], [sku]))
