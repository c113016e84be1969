"""Expiring unpaid orders: through CancelOrder commands with a deterministic key."""

from __future__ import annotations

from sqlalchemy import text

from producers.commands import ConfirmPayment
from tests.support.commands import new_product, order_for, run
from tests.support.concurrency import at_once
from tests.support.ids import unique
from tests.support.outcomes import movement_totals, scalar, stock_of
from worker.adapters.advisory_locks import advisory_lock
from worker.service.maintenance.orders import EXPIRE_UNPAID_ORDERS, expiry_key
from worker.service.maintenance.report import SKIPPED_LOCKED
from worker.service.maintenance.sweeps import run_sweep

DAY = 86_400


def place_orders(runner, sku: str, count: int) -> list[str]:
    return [run(runner, order_for(sku, qty=1)).result["order_number"] for _ in range(count)]


def age_orders(engine, numbers: list[str], seconds: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE orders SET created_at = now() - make_interval(secs => :s) "
                "WHERE order_number = ANY(:n)"
            ),
            {"s": seconds, "n": numbers},
        )


def statuses(engine, numbers: list[str]) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT order_number, status FROM orders WHERE order_number = ANY(:n)"),
            {"n": numbers},
        )
        return dict(rows.all())


def release_movements(engine, numbers: list[str]) -> int:
    return scalar(
        engine,
        "SELECT count(*) FROM stock_movements m JOIN orders o ON o.id = m.order_id "
        "WHERE o.order_number = ANY(:n) AND m.reason = 'release'",
        n=numbers,
    )


def test_old_unpaid_orders_are_cancelled_and_their_stock_released(
    runner, engine, tuned, runner_for
):
    settings = tuned(unpaid_order_expiry_seconds=DAY, maintenance_batch_size=2)
    sku = new_product(runner, stock=10)
    old, fresh = place_orders(runner, sku, 3), place_orders(runner, sku, 1)
    paid = place_orders(runner, sku, 1)
    run(runner, ConfirmPayment(key=unique("pay"), order_number=paid[0]))
    age_orders(engine, old + paid, 2 * DAY)

    report = run_sweep(EXPIRE_UNPAID_ORDERS, settings, engine, runner_for(settings))

    assert report.skipped is None and report.figures["applied"] >= 3
    assert statuses(engine, old) == dict.fromkeys(old, "cancelled")
    assert statuses(engine, fresh + paid) == {fresh[0]: "placed", paid[0]: "paid"}
    assert stock_of(engine, sku) == (10, 2)  # only the fresh and the paid order hold stock
    assert movement_totals(engine, sku) == stock_of(engine, sku)
    # the cancellation went through the ledger under the deterministic key
    ledger = scalar(
        engine,
        "SELECT count(*) FROM command_ledger WHERE idempotency_key = ANY(:k) "
        "AND status = 'succeeded' AND result->>'cancel_reason' = 'payment_expired'",
        k=[expiry_key(n) for n in old],
    )
    assert ledger == 3


def test_running_it_twice_changes_nothing_more(runner, engine, tuned, runner_for):
    settings = tuned(unpaid_order_expiry_seconds=DAY)
    sku = new_product(runner, stock=5)
    old = place_orders(runner, sku, 2)
    age_orders(engine, old, 2 * DAY)

    first = run_sweep(EXPIRE_UNPAID_ORDERS, settings, engine, runner_for(settings))
    second = run_sweep(EXPIRE_UNPAID_ORDERS, settings, engine, runner_for(settings))

    assert first.figures["applied"] >= 2
    assert second.figures["applied"] == 0 and second.figures["rejected"] == 0
    assert release_movements(engine, old) == 2
    assert stock_of(engine, sku) == (5, 0)


def test_two_concurrent_runs_cancel_each_order_once(runner, engine, tuned, runner_for):
    settings = tuned(unpaid_order_expiry_seconds=DAY, maintenance_batch_size=3)
    sku = new_product(runner, stock=20)
    old = place_orders(runner, sku, 8)
    age_orders(engine, old, 2 * DAY)

    reports = at_once(
        lambda: run_sweep(EXPIRE_UNPAID_ORDERS, settings, engine, runner_for(settings)),
        lambda: run_sweep(EXPIRE_UNPAID_ORDERS, settings, engine, runner_for(settings)),
    )

    ran = [r for r in reports if r.skipped is None]
    assert sum(r.figures["applied"] for r in ran) >= 8
    assert all(r.skipped == SKIPPED_LOCKED for r in reports if r.skipped)
    assert statuses(engine, old) == dict.fromkeys(old, "cancelled")
    assert release_movements(engine, old) == 8
    assert stock_of(engine, sku) == (20, 0)


def test_a_run_skips_while_another_holds_the_lock(runner, engine, tuned, runner_for):
    settings = tuned(unpaid_order_expiry_seconds=DAY)
    sku = new_product(runner, stock=1)
    old = place_orders(runner, sku, 1)
    age_orders(engine, old, 2 * DAY)

    with advisory_lock(engine, EXPIRE_UNPAID_ORDERS.task) as held:
        assert held
        skipped = run_sweep(EXPIRE_UNPAID_ORDERS, settings, engine, runner_for(settings))

    assert skipped.skipped == SKIPPED_LOCKED
    assert statuses(engine, old) == {old[0]: "placed"}


def test_an_order_paid_after_it_was_found_due_is_not_cancelled(runner, engine):
    """The race between the sweep's query and a payment: the command re-checks the
    status under the row lock, and expiry never cancels a paid order."""
    from producers.commands import CancelOrder

    sku = new_product(runner, stock=1)
    [number] = place_orders(runner, sku, 1)
    run(runner, ConfirmPayment(key=unique("pay"), order_number=number))

    outcome = run(
        runner,
        CancelOrder(key=expiry_key(number), order_number=number, reason="payment_expired"),
    )

    assert (outcome.status, outcome.reason) == ("rejected", "invalid_order_transition")
    assert "cannot expire" in outcome.message
    assert statuses(engine, [number]) == {number: "paid"}
    assert stock_of(engine, sku) == (1, 1)
