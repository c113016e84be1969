"""A batch of deliveries decided in one transaction (worker/service/batch.py), in this
process on the real database: each command alone in its savepoint, one commit, the
row locks of the whole batch up front in the global order."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from producers.commands import CancelOrder, Command, PlaceOrder
from tests.support.commands import new_product, order_for
from tests.support.failpoints import FailpointRecords
from tests.support.ids import unique
from tests.support.outcomes import ledger_rows, movement_totals, orders_with_key, stock_of
from tests.support.sessions import wait_until_sessions_wait
from worker.service.batch import BatchItem, BatchRunner
from worker.service.failpoints import Failpoints
from worker.service.outcome import Outcome
from worker.service.runner import CommandRunner, RetryLater


def item(command: Command | dict) -> BatchItem:
    if isinstance(command, Command):
        return BatchItem(command.type, [command.message()])
    return BatchItem(str(command["type"]), [command])


def decided(results: list) -> list[Outcome]:
    assert not any(isinstance(result, RetryLater) for result in results), results
    return results


def started_together(engine, keys: list[str]) -> int:
    """How many transactions stored these keys' ledger rows (`now()` is a transaction's
    start time, so one transaction gives one distinct value)."""
    query = "SELECT count(DISTINCT created_at) FROM command_ledger WHERE idempotency_key = ANY(:k)"
    with engine.connect() as connection:
        return int(connection.execute(text(query), {"k": keys}).scalar_one())


def test_each_command_is_decided_alone_and_the_batch_commits_once(runner, engine):
    sku = new_product(runner, stock=5)
    commands = [order_for(sku, 2), order_for(sku, 10), order_for(sku, 3)]

    outcomes = decided(BatchRunner(runner).run([item(c) for c in commands]))

    assert [(o.status, o.reason) for o in outcomes] == [
        ("succeeded", None),
        ("rejected", "insufficient_stock"),
        ("succeeded", None),
    ]
    # the rejected order's stock changes were undone alone; the others' were kept
    assert stock_of(engine, sku) == (5, 5) == movement_totals(engine, sku)
    assert [orders_with_key(engine, c.key) for c in commands] == [1, 0, 1]
    assert started_together(engine, [c.key for c in commands]) == 1


def test_an_invalid_command_in_a_batch_is_answered_and_the_others_commit(runner, engine):
    sku = new_product(runner, stock=5)
    invalid = {"type": "place_order", "key": unique("bad"), "customer_ref": "c", "lines": []}
    batch = [order_for(sku, 1), invalid, order_for(sku, 1)]

    outcomes = decided(BatchRunner(runner).run([item(c) for c in batch]))

    assert [o.status for o in outcomes] == ["succeeded", "rejected", "succeeded"]
    assert outcomes[1].reason == "invalid_command" and outcomes[1].key == invalid["key"]
    assert stock_of(engine, sku) == (5, 2)


def test_a_key_twice_in_one_batch_is_decided_once(runner, engine):
    sku = new_product(runner, stock=5)
    order = order_for(sku, 2)
    reused = PlaceOrder(key=order.key, customer_ref="other", lines=[{"sku": sku, "qty": 1}])

    first, again, other = decided(BatchRunner(runner).run([item(order), item(order), item(reused)]))

    assert first.status == "succeeded" and not first.replayed
    assert again.replayed and again.result == first.result
    assert (other.status, other.reason) == ("rejected", "idempotency_key_reused")
    assert orders_with_key(engine, order.key) == 1
    assert stock_of(engine, sku) == (5, 2)


def test_a_command_whose_savepoint_fails_runs_again_alone_as_the_same_attempt(
    settings, engine, session_factory, runner
):
    failing = CommandRunner(
        settings, engine, session_factory, Failpoints("after_lock=raise*1@FAIL-")
    )
    sku = new_product(runner, stock=5)
    ok, fails = order_for(sku, 1), order_for(sku, 1, key=unique("FAIL"))

    done, retry = BatchRunner(failing).run([item(ok), item(fails)])

    # attempt 1 of FAIL- fails in the batch and again alone: a retry, nothing stored
    assert done.status == "succeeded"
    assert isinstance(retry, RetryLater)
    assert ledger_rows(engine, fails.key) == 0 and orders_with_key(engine, fails.key) == 0
    assert stock_of(engine, sku) == (5, 1)

    (redelivered,) = decided(BatchRunner(failing).run([item(fails)]))
    assert redelivered.status == "succeeded"
    assert stock_of(engine, sku) == (5, 2) == movement_totals(engine, sku)


def test_batches_naming_rows_in_opposite_orders_do_not_deadlock(
    settings, engine, session_factory, runner, tmp_path
):
    """Batch A holds both SKUs (paused inside its first command); batch B names them
    the other way round. Taking each batch's locks up front in id order, B waits for A
    before it holds anything; command by command, B would hold SKU 2 while A waits for
    it, and PostgreSQL would end one of them with a deadlock."""
    first, second = new_product(runner, stock=10), new_product(runner, stock=10)
    batch_a = [order_for(first, 1, key=unique("PAUSE")), order_for(second, 1)]
    batch_b = [order_for(second, 1), order_for(first, 1)]
    records = FailpointRecords(tmp_path)
    paused = CommandRunner(
        settings, engine, session_factory, Failpoints("after_lock=pause:30@PAUSE-", tmp_path)
    )
    results: dict[str, list] = {}

    def run(name: str, batch_runner: CommandRunner, batch: list[PlaceOrder]) -> None:
        results[name] = BatchRunner(batch_runner).run([item(c) for c in batch])

    with records.released_at_exit():
        a = threading.Thread(target=run, args=("a", paused, batch_a))
        a.start()
        records.wait_for("PAUSE-")
        b = threading.Thread(target=run, args=("b", runner, batch_b))
        b.start()
        wait_until_sessions_wait(engine, 1)  # B waits for A's locks
        records.release_all()
        a.join(60)
        b.join(60)

    assert [o.status for o in decided(results["a"] + results["b"])] == ["succeeded"] * 4
    assert stock_of(engine, first) == (10, 2) and stock_of(engine, second) == (10, 2)
    # no command failed on the way (a deadlock victim would be run again alone and
    # succeed, but its error stays on record)
    errors = """
        SELECT idempotency_key, attempts, last_error FROM command_deliveries
        WHERE idempotency_key = ANY(:k) AND (last_error IS NOT NULL OR attempts <> 1)
    """
    with engine.connect() as connection:
        keys = [c.key for c in batch_a + batch_b]
        assert connection.execute(text(errors), {"k": keys}).all() == []


@pytest.mark.parametrize("size", [1, 40])
def test_any_batch_size_decides_every_command(runner, engine, size):
    sku = new_product(runner, stock=size)
    commands = [order_for(sku, 1) for _ in range(size)]

    outcomes = decided(BatchRunner(runner).run([item(c) for c in commands]))

    assert [o.status for o in outcomes] == ["succeeded"] * size
    assert stock_of(engine, sku) == (size, size)


def test_commands_of_a_batch_see_each_others_stock_changes(runner, engine):
    """A batch reads its locked stock rows once: a cancellation that releases stock and
    an order that needs exactly that stock, in one batch, see the same row."""
    sku = new_product(runner, stock=2)
    first = decided(BatchRunner(runner).run([item(order_for(sku, 2))]))[0]
    cancel = CancelOrder(key=unique("cancel"), order_number=first.result["order_number"])
    needs_it, too_much = order_for(sku, 2), order_for(sku, 1)

    outcomes = decided(BatchRunner(runner).run([item(c) for c in (cancel, needs_it, too_much)]))

    assert [(o.status, o.reason) for o in outcomes] == [
        ("succeeded", None),
        ("succeeded", None),
        ("rejected", "insufficient_stock"),
    ]
    assert stock_of(engine, sku) == (2, 2) == movement_totals(engine, sku)
