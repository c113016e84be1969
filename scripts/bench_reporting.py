"""The reporting query and the keyset page at a million orders: how long they take.

    python scripts/bench_reporting.py               # fills orderq_bench up to 1,000,000 orders
    python scripts/bench_reporting.py --orders 200000

Uses DATABASE_URL (default: the local `orderq_bench` database). Orders are added with
one set-based INSERT until the table holds `--orders` rows (kept for later runs),
then ANALYZE, then each query runs `--repeat` times; the median and the slowest are
printed against the 100 ms target, with the plan's index. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/orderq_bench")

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from orderq.read import Reader
from orderq.read.orders import FIRST_PAGE_ALL_STATUSES, NEXT_PAGE_ALL_STATUSES
from orderq.schema import ensure_database_exists, upgrade_to_head
from producers.database import normalize_database_url
from tests.support.plans import index_names
from worker.settings import WorkerSettings

console = Console()

FILL = """
INSERT INTO orders (idempotency_key, customer_ref, status, total_cents, created_at)
SELECT 'report-bench-' || n, 'customer-' || (n % 5000),
       (ARRAY['placed','paid','shipped','shipped','shipped','cancelled'])[1 + n % 6],
       100 + n % 10000, now() - (n % 525600) * interval '1 minute'
FROM generate_series(:start, :stop) n
"""


def timed(action, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations), max(durations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    url = normalize_database_url(WorkerSettings().require_database_url())
    ensure_database_exists(url)
    upgrade_to_head(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        have = connection.execute(text("SELECT count(*) FROM orders")).scalar() or 0
        if have < args.orders:
            with console.status(f"adding {args.orders - have:,} orders"):
                start = connection.execute(
                    text(
                        "SELECT coalesce(max(substring(idempotency_key from 14)::bigint), 0) + 1 "
                        "FROM orders WHERE idempotency_key LIKE 'report-bench-%'"
                    )
                ).scalar()
                connection.execute(
                    text(FILL), {"start": start, "stop": start + args.orders - have - 1}
                )
    with engine.connect() as connection:
        connection.execute(text("ANALYZE orders"))
        total = connection.execute(text("SELECT count(*) FROM orders")).scalar()

    now = datetime.now(UTC)
    week = (now - timedelta(days=7), now)
    reader = Reader(engine)
    size = 50
    first = reader.orders("shipped", size)
    deep = first
    for _ in range(20):  # a cursor twenty pages in
        deep = reader.orders("shipped", size, deep.next_cursor)
    deep_all = reader.orders(None, size)
    for _ in range(20):  # the same, across every status
        deep_all = reader.orders(None, size, deep_all.next_cursor)
    statuses = {"statuses": ["placed", "paid", "shipped", "cancelled"], "limit": size}
    after = {"after_created_at": now - timedelta(days=30), "after_id": 0}
    checks = {
        "report: orders and value per status, last 7 days": (
            lambda: reader.order_totals(*week),
            "SELECT count(*), sum(total_cents) FROM orders WHERE status = 'shipped' "
            "AND created_at >= now() - interval '7 days' AND created_at < now()",
        ),
        "keyset page: first 50 shipped": (
            lambda: reader.orders("shipped", size),
            "SELECT id FROM orders WHERE status = 'shipped' "
            "ORDER BY created_at DESC, id DESC LIMIT 50",
        ),
        "keyset page: 50 shipped, 20 pages in": (
            lambda: reader.orders("shipped", size, deep.next_cursor),
            "SELECT id FROM orders WHERE status = 'shipped' AND (created_at, id) < (now(), 0) "
            "ORDER BY created_at DESC, id DESC LIMIT 50",
        ),
        "keyset page: first 50, every status": (
            lambda: reader.orders(None, size),
            str(FIRST_PAGE_ALL_STATUSES),
            statuses,
        ),
        "keyset page: 50, every status, 20 pages in": (
            lambda: reader.orders(None, size, deep_all.next_cursor),
            str(NEXT_PAGE_ALL_STATUSES),
            {**statuses, **after},
        ),
    }
    table = Table("query", "median", "slowest", "target", "index", title=f"at {total:,} orders")
    with engine.connect() as connection:
        for label, (action, explained, *params) in checks.items():
            median, slowest = timed(action, args.repeat)
            used = index_names(connection, explained, *params)
            indexes = ", ".join(sorted(used)) or "none (seq scan)"
            table.add_row(label, f"{median:.1f} ms", f"{slowest:.1f} ms", "< 100 ms", indexes)
    console.print(table)
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
