"""Purging old ledger rows: bounded batches, no blocking, and duplicates still caught."""

from __future__ import annotations

import threading

from sqlalchemy import text

from tests.support.commands import new_product, order_for, run
from tests.support.concurrency import at_once
from tests.support.ids import unique
from tests.support.outcomes import scalar, stock_of
from worker.service.maintenance.ledger import purge_ledger

RETENTION_DAYS = 30.0


def insert_old_ledger_rows(engine, count: int, age_days: int = 60) -> str:
    """`count` completed ledger rows (with their delivery rows) claimed `age_days` ago."""
    prefix = unique("old")
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status,
                                            result, created_at, completed_at)
                SELECT :prefix || '-' || g, 'place_order', repeat('f', 64), 'succeeded',
                       '{}'::jsonb, now() - make_interval(days => :age),
                       now() - make_interval(days => :age)
                FROM generate_series(1, :count) g
                """
            ),
            {"prefix": prefix, "count": count, "age": age_days},
        )
        connection.execute(
            text(
                """
                INSERT INTO command_deliveries (idempotency_key, command_type, fingerprint,
                                                payload, state, attempts)
                SELECT :prefix || '-' || g, 'place_order', repeat('f', 64), '{}'::jsonb,
                       'running', 1
                FROM generate_series(1, :count) g
                """
            ),
            {"prefix": prefix, "count": count},
        )
    return prefix


def ledger_rows(engine, prefix: str) -> int:
    return scalar(
        engine, "SELECT count(*) FROM command_ledger WHERE idempotency_key LIKE :p", p=prefix + "-%"
    )


def delivery_rows(engine, prefix: str) -> int:
    return scalar(
        engine,
        "SELECT count(*) FROM command_deliveries WHERE idempotency_key LIKE :p",
        p=prefix + "-%",
    )


def test_purge_deletes_only_rows_past_retention_in_batches(runner, engine, tuned):
    settings = tuned(ledger_retention_days=RETENTION_DAYS, maintenance_batch_size=40)
    old = insert_old_ledger_rows(engine, 100)
    recent = insert_old_ledger_rows(engine, 5, age_days=10)
    fresh = run(runner, order_for(new_product(runner, stock=1)))

    report = purge_ledger(settings, engine)

    assert ledger_rows(engine, old) == 0 and delivery_rows(engine, old) == 0
    assert ledger_rows(engine, recent) == 5
    assert (
        scalar(
            engine, "SELECT count(*) FROM command_ledger WHERE idempotency_key = :k", k=fresh.key
        )
        == 1
    )
    assert report.figures["purged"] >= 100 and report.figures["batches"] >= 3


def test_purge_stops_at_the_batch_limit_and_the_next_run_goes_on(engine, tuned):
    settings = tuned(
        ledger_retention_days=RETENTION_DAYS, maintenance_batch_size=10, maintenance_max_batches=2
    )
    old = insert_old_ledger_rows(engine, 35)
    purge_ledger(settings.model_copy(update={"maintenance_max_batches": 100}), engine)  # drain
    old = insert_old_ledger_rows(engine, 35)

    first = purge_ledger(settings, engine)

    assert first.figures == {**first.figures, "purged": 20, "batches": 2, "more": True}
    assert ledger_rows(engine, old) == 15
    purge_ledger(settings, engine)
    second = purge_ledger(settings, engine)
    assert ledger_rows(engine, old) == 0
    assert second.figures["purged"] == 0  # twice more changes nothing more


def test_two_concurrent_purges_delete_each_row_once(engine, tuned):
    settings = tuned(ledger_retention_days=RETENTION_DAYS, maintenance_batch_size=500)
    old = insert_old_ledger_rows(engine, 3000)

    reports = at_once(
        lambda: purge_ledger(settings, engine), lambda: purge_ledger(settings, engine)
    )

    assert ledger_rows(engine, old) == 0
    assert sum(r.figures.get("purged", 0) for r in reports) >= 3000
    assert any(r.skipped is None for r in reports)


def test_commands_complete_while_100k_ledger_rows_are_purged(runner, engine, tuned):
    settings = tuned(ledger_retention_days=RETENTION_DAYS, maintenance_batch_size=5000)
    old = insert_old_ledger_rows(engine, 100_000)
    sku = new_product(runner, stock=1000)
    first_batch_done, purge_done = threading.Event(), threading.Event()
    batches_after_first_command: list[int] = []
    completed: list[str] = []

    def on_batch(_batch) -> None:
        first_batch_done.set()
        if completed:
            batches_after_first_command.append(1)

    def purge():
        try:
            return purge_ledger(settings, engine, on_batch=on_batch)
        finally:
            purge_done.set()

    thread = threading.Thread(target=purge)
    thread.start()
    assert first_batch_done.wait(60)
    while not purge_done.is_set():
        outcome = run(runner, order_for(sku))
        assert outcome.status == "succeeded"
        completed.append(outcome.key)
    thread.join(60)

    assert ledger_rows(engine, old) == 0
    assert completed and batches_after_first_command, "no command ran during the purge"
    kept = scalar(
        engine, "SELECT count(*) FROM command_ledger WHERE idempotency_key = ANY(:k)", k=completed
    )
    assert kept == len(completed)
    assert stock_of(engine, sku) == (1000, len(completed))


def test_a_place_order_redelivered_after_its_ledger_row_was_purged_replays_the_order(
    runner, engine, tuned
):
    settings = tuned(ledger_retention_days=RETENTION_DAYS)
    sku = new_product(runner, stock=5)
    command = order_for(sku, qty=2)
    first = run(runner, command)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE command_ledger SET created_at = now() - interval '60 days' "
                "WHERE idempotency_key = :k"
            ),
            {"k": command.key},
        )
    purge_ledger(settings, engine)
    assert (
        scalar(
            engine, "SELECT count(*) FROM command_ledger WHERE idempotency_key = :k", k=command.key
        )
        == 0
    )

    again = run(runner, command)
    third = run(runner, command)

    assert (again.status, again.result) == ("succeeded", first.result)
    assert third.replayed and third.result == first.result
    assert (
        scalar(engine, "SELECT count(*) FROM orders WHERE idempotency_key = :k", k=command.key) == 1
    )
    assert stock_of(engine, sku) == (5, 2)
