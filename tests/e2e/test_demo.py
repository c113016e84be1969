"""`orderq demo`: completes, its invariants hold, and its numbers are the database's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, pool, text

from orderq.demo import DemoRun, OrdersScenario
from orderq.embedded import stop
from tests.support.embedded import clean_environment
from tests.support.scratch import scratch_dir
from tests.support.workers import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderq.cli", "demo"],
        cwd=PROJECT_ROOT,
        env={**env, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=170,
    )


def table_value(output: str, label: str) -> str:
    found = re.search(rf"│ {re.escape(label)}\s+│\s+([^│]+?)\s+│", output)
    assert found, f"no {label!r} row in:\n{output}"
    return found.group(1)


def count(database_url: str, sql: str, **params) -> int:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def assert_demo_matches_database(result: subprocess.CompletedProcess, database_url: str) -> str:
    output = result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all invariants hold" in output
    assert "✗ FAILED" not in output
    tag = re.search(r"demo run (\w+):", output).group(1)
    keys = DemoRun(tag).keys
    placed = count(
        database_url, "SELECT count(*) FROM orders WHERE idempotency_key LIKE :k", k=keys
    )
    assert table_value(output, "orders placed") == str(placed)
    taken = count(
        database_url,
        "SELECT sum(deliveries) FROM command_deliveries WHERE idempotency_key LIKE :k "
        "AND idempotency_key NOT LIKE :loans",  # the orders table is printed before loans run
        k=keys,
        loans=DemoRun(tag).key("loan-%"),
    )
    assert table_value(output, "deliveries taken by the workers") == str(taken)
    # the race for 5 (then 8) lamps by 40 customers: never more sold than received
    lamps = count(
        database_url,
        "SELECT coalesce(sum(i.qty), 0) FROM order_items i JOIN orders o ON o.id = i.order_id "
        "WHERE i.sku = :sku AND o.status <> 'cancelled'",
        sku=DemoRun(tag).sku("LAMP"),
    )
    assert 0 < lamps <= 8
    assert table_value(output, "rejected orders re-sent after new stock") == "6 of 6"
    assert table_value(output, "keys reused with another payload") == "3 of 3"
    # loans: five members raced for one copy; the database holds one loan from the race
    race = [DemoRun(tag).key(f"loan-race-{n}") for n in range(1, 6)]
    won = count(database_url, "SELECT count(*) FROM loans WHERE idempotency_key = ANY(:k)", k=race)
    assert won == 1
    assert table_value(output, "  … loans created") == str(won)
    doubled = count(
        database_url,
        "SELECT count(*) FROM (SELECT copy_id FROM loans WHERE returned_at IS NULL "
        "GROUP BY copy_id HAVING count(*) > 1) d",
    )
    assert doubled == 0
    assert "return handed the copy to the first in the queue" in output
    return tag


def test_demo_with_no_urls_starts_embedded_servers_and_a_worker_and_passes():
    data_dir = scratch_dir("demo-")
    try:
        result = run_demo(clean_environment(data_dir))

        assert "embedded PostgreSQL" in result.stderr and "embedded Redis" in result.stderr
        assert "starting one for the demo" in result.stdout
        from orderq.embedded import ensure_running

        assert_demo_matches_database(result, ensure_running(data_dir).database_url)
    finally:
        stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_demo_uses_the_running_worker_and_its_checks_catch_a_broken_stock_history(
    worker, migrated_database
):
    result = run_demo(dict(os.environ))

    assert "using the running worker(s)" in result.stdout
    tag = assert_demo_matches_database(result, migrated_database)

    # The reconciliation check is a real query: a stock movement written by hand,
    # without the matching stock change, makes it fail.
    engine = create_engine(migrated_database, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO stock_movements (product_id, on_hand_delta, reserved_delta, "
                    "reason, command_key) SELECT id, 1, 0, 'restock', 'by-hand' FROM products "
                    "WHERE sku = :sku"
                ),
                {"sku": DemoRun(tag).sku("MUG")},
            )
        with engine.connect() as connection:
            checks = {c.name: c for c in OrdersScenario(DemoRun(tag)).checks(connection)}
    finally:
        engine.dispose()
    assert not checks["stock = sum of its movements"].passed
    assert checks["stock = sum of its movements"].detail == "2 of 3 reconcile"
