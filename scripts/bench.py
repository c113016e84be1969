"""Throughput and latency of orderq, printed as ratios against baselines from the same run.

    python scripts/bench.py                 # defaults: a few thousand commands, ~2 minutes
    python scripts/bench.py --orders 1000   # quicker, noisier

Baselines (measured here, now, on this machine):
  bare        raw psycopg, 8 connections, the place-order transaction shape
              (lock stock FOR UPDATE in id order, insert order + item, update stock,
              insert movement, commit) — spread over many SKUs, and on one hot SKU
  bare+ledger the same plus orderq's exactly-once bookkeeping (attempt upsert, ledger
              claim, savepoint, outcome update): the SQL orderq really sends
  noop        a Celery task that does nothing: Redis broker, prefork x2, late ack,
              prefetch 1

Measured through the real path (publisher -> Redis -> `celery worker` -> PostgreSQL):
  end-to-end place-order throughput vs the combined bound 1/(1/bare + 1/noop),
  one hot SKU vs the bare hot-row rate, a duplicate delivery vs a fresh command,
  p99/p50 latency at 70 % of the measured peak.

Uses DATABASE_URL / CELERY_BROKER_URL (default: local PostgreSQL database
`orderq_bench`, Redis db 9) and a private queue. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TAG = uuid.uuid4().hex[:8]
os.environ.setdefault("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/orderq_bench")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
os.environ["ORDERQ_COMMAND_QUEUE"] = f"bench-{TAG}"

import psycopg  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from orderq.schema import ensure_database_exists, upgrade_to_head  # noqa: E402
from producers.commands import PlaceOrder  # noqa: E402
from producers.database import normalize_database_url  # noqa: E402
from producers.publisher import Publisher  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402
from worker.settings import WorkerSettings  # noqa: E402

console = Console()
SETTINGS = WorkerSettings()
DB_URL = normalize_database_url(SETTINGS.require_database_url())
PG_DSN = make_url(DB_URL).set(drivername="postgresql").render_as_string(hide_password=False)
QUEUE = SETTINGS.command_queue


# -- fixtures -----------------------------------------------------------------------------


def create_products(prefix: str, count: int, stock: int) -> list[str]:
    """Products with plenty of stock, inserted directly (set-based)."""
    skus = [f"{prefix}-{i}" for i in range(count)]
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO products (sku, name, price_cents) SELECT unnest(%s::text[]), 'bench', 100",
            (skus,),
        )
        connection.execute(
            "INSERT INTO stock_levels (product_id, on_hand) "
            "SELECT id, %s FROM products WHERE sku = ANY(%s)",
            (stock, skus),
        )
    return skus


# -- baseline 1: bare psycopg -------------------------------------------------------------

MINIMAL_SHAPE = [
    (
        "SELECT s.product_id, s.on_hand, s.reserved, p.price_cents FROM products p "
        "JOIN stock_levels s ON s.product_id = p.id WHERE p.sku = %(sku)s "
        "ORDER BY p.id FOR UPDATE OF s"
    ),
    (
        "INSERT INTO orders (idempotency_key, customer_ref, status, total_cents) "
        "VALUES (%(key)s, 'bench', 'placed', 100) RETURNING id, order_number"
    ),
    (
        "INSERT INTO order_items (order_id, product_id, sku, qty, unit_price_cents, "
        "line_total_cents) VALUES (%(order_id)s, %(product_id)s, %(sku)s, 1, 100, 100)"
    ),
    "UPDATE stock_levels SET reserved = reserved + 1 WHERE product_id = %(product_id)s",
    (
        "INSERT INTO stock_movements (product_id, order_id, on_hand_delta, reserved_delta, "
        "reason, command_key) VALUES (%(product_id)s, %(order_id)s, 0, 1, 'reserve', %(key)s)"
    ),
]


def bare_transaction(connection: psycopg.Connection, sku: str, with_ledger: bool) -> None:
    key = f"bare-{uuid.uuid4().hex}"
    params: dict[str, object] = {"key": key, "sku": sku}
    if with_ledger:
        connection.execute(
            "INSERT INTO command_deliveries (idempotency_key, command_type, fingerprint, "
            "payload, state, attempts) VALUES (%(key)s, 'place_order', repeat('0', 64), "
            "'{}', 'running', 1) ON CONFLICT (idempotency_key) DO UPDATE "
            "SET attempts = command_deliveries.attempts + 1",
            params,
        )
        connection.commit()
        connection.execute(
            "INSERT INTO command_ledger (idempotency_key, command_type, fingerprint, status) "
            "VALUES (%(key)s, 'place_order', repeat('0', 64), 'processing') "
            "ON CONFLICT DO NOTHING RETURNING id",
            params,
        )
        connection.execute("SAVEPOINT handler")
    product_id, *_ = connection.execute(MINIMAL_SHAPE[0], params).fetchone()
    params["product_id"] = product_id
    params["order_id"], _ = connection.execute(MINIMAL_SHAPE[1], params).fetchone()
    for statement in MINIMAL_SHAPE[2:]:
        connection.execute(statement, params)
    if with_ledger:
        connection.execute("RELEASE SAVEPOINT handler")
        connection.execute(
            "UPDATE command_ledger SET status = 'succeeded', result = '{}', "
            "completed_at = now() WHERE idempotency_key = %(key)s",
            params,
        )
    connection.commit()


def bare_rate(skus: list[str], transactions: int, with_ledger: bool, connections: int = 8) -> float:
    """Transactions per second with `connections` threads, each its own connection."""
    per_thread = transactions // connections
    barrier = threading.Barrier(connections + 1)

    def work(index: int) -> None:
        with psycopg.connect(PG_DSN) as connection:
            barrier.wait()
            for n in range(per_thread):
                bare_transaction(
                    connection, skus[(index * per_thread + n) % len(skus)], with_ledger
                )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return per_thread * connections / (time.perf_counter() - started)


# -- measuring a worker draining a queue --------------------------------------------------


def queue_depth(client: redis.Redis) -> int:
    return int(client.llen(QUEUE)) + int(client.hlen("unacked"))


def drain_rate(worker: WorkerProcess, count: int, publish: Callable[[], None]) -> float:
    """Publish `count` messages while the worker is paused, then time the drain."""
    client = redis.Redis.from_url(SETTINGS.require_broker_url())
    worker.pause()
    publish()
    worker.resume()
    while queue_depth(client) >= count:
        time.sleep(0.002)
    started = time.perf_counter()
    while queue_depth(client) > 0:
        time.sleep(0.005)
    return count / (time.perf_counter() - started)


class BenchWorker(WorkerProcess):
    """A worker whose consumption can be paused with SIGSTOP/SIGCONT (all processes)."""

    def pause(self) -> None:
        os.killpg(self.pid, 19)  # SIGSTOP

    def resume(self) -> None:
        os.killpg(self.pid, 18)  # SIGCONT


def publish_noops(count: int) -> Callable[[], None]:
    def publish() -> None:
        with Publisher(SETTINGS, track=False) as publisher:
            for _ in range(count):
                publisher.send("orderq.bench.noop", "noop", {})

    return publish


def publish_orders(commands: list[PlaceOrder]) -> Callable[[], None]:
    def publish() -> None:
        with Publisher(SETTINGS, track=False) as publisher:
            for command in commands:
                publisher.publish(command)

    return publish


def orders_for(skus: list[str], count: int) -> list[PlaceOrder]:
    return [
        PlaceOrder(
            key=f"bench-{TAG}-{uuid.uuid4().hex}",
            customer_ref="bench",
            lines=[{"sku": skus[i % len(skus)], "qty": 1}],
        )
        for i in range(count)
    ]


def outcomes_recorded(keys: list[str]) -> int:
    with psycopg.connect(PG_DSN) as connection:
        return connection.execute(
            "SELECT count(*) FROM command_ledger WHERE idempotency_key = ANY(%s) "
            "AND status IN ('succeeded', 'rejected')",
            (keys,),
        ).fetchone()[0]


def latencies_at(rate: float, seconds: float, skus: list[str]) -> list[float]:
    """Publish at a steady `rate`; latency = ledger completion - publish time."""
    commands = orders_for(skus, int(rate * seconds))
    sent: dict[str, float] = {}
    interval = 1.0 / rate
    with Publisher(SETTINGS, track=False) as publisher:
        start = time.time()
        for n, command in enumerate(commands):
            delay = start + n * interval - time.time()
            if delay > 0:
                time.sleep(delay)
            sent[command.key] = time.time()
            publisher.publish(command)
    deadline = time.time() + 60
    keys = list(sent)
    while outcomes_recorded(keys) < len(keys) and time.time() < deadline:
        time.sleep(0.2)
    with psycopg.connect(PG_DSN) as connection:
        rows = connection.execute(
            "SELECT idempotency_key, extract(epoch FROM completed_at) FROM command_ledger "
            "WHERE idempotency_key = ANY(%s)",
            (keys,),
        ).fetchall()
    return sorted(float(done) - sent[key] for key, done in rows)


def in_worker_costs(
    skus: list[str], count: int, settings: WorkerSettings = SETTINGS
) -> tuple[float, float]:
    """Milliseconds per fresh place-order and per duplicate of it, run by the worker's
    own CommandRunner in this process (no broker, no Celery): the database work a
    duplicate saves."""
    from worker.service.bootstrap import bootstrap

    services = bootstrap(settings, send_command=lambda *_: None)
    runner = services.runner
    messages = [command.message() for command in orders_for(skus, count)]
    timings = []
    for _ in range(2):  # first the fresh commands, then the same keys again
        started = time.perf_counter()
        for message in messages:
            runner.run(message, "place_order")
        timings.append((time.perf_counter() - started) * 1000 / count)
    services.close()
    return timings[0], timings[1]


def compare_guards(skus: list[str], count: int) -> int:
    """In-worker cost of a fresh command with the timeouts as startup options, as SET
    LOCAL per transaction (PgBouncer), and left to the role (nothing sent)."""
    table = Table("session guards", "fresh command", "duplicate", "vs startup options")
    baseline = None
    for _ in range(2):  # the second round is the one printed (warm caches, warm pool)
        rows = []
        for mode in ("connection", "transaction", "server"):
            settings = SETTINGS.model_copy(update={"db_session_guards": mode})
            fresh, duplicate = in_worker_costs(skus, count, settings)
            rows.append((mode, fresh, duplicate))
    for mode, fresh, duplicate in rows:
        baseline = baseline or fresh
        table.add_row(mode, f"{fresh:.2f} ms", f"{duplicate:.2f} ms", f"{fresh / baseline:.2f}")
    console.print(table)
    return 0


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=3000, help="commands per measurement")
    parser.add_argument("--skus", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--guards",
        action="store_true",
        help="only compare the ways the session timeouts reach the server (docs/scaling.md)",
    )
    args = parser.parse_args()

    ensure_database_exists(DB_URL)
    upgrade_to_head(DB_URL)
    skus = create_products(f"B{TAG}", args.skus, 10_000_000)
    (hot,) = create_products(f"H{TAG}", 1, 10_000_000)
    console.print(f"database {make_url(DB_URL).render_as_string()} · queue {QUEUE}")
    if args.guards:
        return compare_guards(skus, min(args.orders, 2000))

    figures: dict[str, float] = {}
    with console.status("bare psycopg, 8 connections"):
        figures["bare"] = bare_rate(skus, args.orders, with_ledger=False)
        figures["bare_hot"] = bare_rate([hot], args.orders, with_ledger=False)
        figures["bare_ledger"] = bare_rate(skus, args.orders, with_ledger=True)
    with console.status("in-worker cost of a fresh command and of a duplicate"):
        fresh_ms, duplicate_ms = in_worker_costs(skus, min(args.orders, 1000))

    worker = BenchWorker(concurrency=args.concurrency, name="bench")
    worker.start()
    try:
        with console.status("celery no-op"):
            figures["noop"] = drain_rate(worker, args.orders, publish_noops(args.orders))
        with console.status("end-to-end place-order"):
            fresh = orders_for(skus, args.orders)
            figures["e2e"] = drain_rate(worker, len(fresh), publish_orders(fresh))
            assert outcomes_recorded([c.key for c in fresh]) == len(fresh), "lost commands"
        with console.status("duplicate deliveries"):
            figures["duplicates"] = drain_rate(worker, len(fresh), publish_orders(fresh))
        with console.status("one hot SKU"):
            hot_orders = orders_for([hot], args.orders)
            figures["e2e_hot"] = drain_rate(worker, len(hot_orders), publish_orders(hot_orders))
        with console.status("latency at 70 % of peak"):
            latencies = latencies_at(0.7 * figures["e2e"], args.latency_seconds, skus)
    finally:
        worker.stop()

    bound = 1 / (1 / figures["bare"] + 1 / figures["noop"])
    bound_ledger = 1 / (1 / figures["bare_ledger"] + 1 / figures["noop"])
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    duplicate_cost = figures["e2e"] / figures["duplicates"]

    table = Table("measurement", "figure", title="orderq benchmark (one run, one machine)")
    table.add_row("bare psycopg, place-order shape, 8 conns", f"{figures['bare']:,.0f} tx/s")
    table.add_row("bare psycopg, one hot row", f"{figures['bare_hot']:,.0f} tx/s")
    table.add_row("bare psycopg + ledger bookkeeping", f"{figures['bare_ledger']:,.0f} tx/s")
    table.add_row("celery no-op, prefork x2", f"{figures['noop']:,.0f} tasks/s")
    table.add_row("combined bound 1/(1/bare + 1/noop)", f"{bound:,.0f} /s")
    table.add_row("end-to-end place-order", f"{figures['e2e']:,.0f} /s")
    table.add_row("end-to-end, one hot SKU", f"{figures['e2e_hot']:,.0f} /s")
    table.add_row("duplicate deliveries", f"{figures['duplicates']:,.0f} /s")
    table.add_row(
        "in the worker, no broker: fresh / duplicate",
        f"{fresh_ms:.2f} ms / {duplicate_ms:.2f} ms",
    )
    table.add_row(
        f"latency at {0.7 * figures['e2e']:,.0f}/s (n={len(latencies)})",
        f"p50 {p50 * 1000:.1f} ms · p99 {p99 * 1000:.1f} ms",
    )
    console.print(table)

    ratios = Table("ratio", "value", "target", title="ratios against this run's baselines")
    ratios.add_row("end-to-end / combined bound", f"{figures['e2e'] / bound:.2f}", ">= 0.85")
    ratios.add_row(
        "end-to-end / bound with ledger SQL", f"{figures['e2e'] / bound_ledger:.2f}", "(info)"
    )
    ratios.add_row(
        "hot SKU / bare hot row", f"{figures['e2e_hot'] / figures['bare_hot']:.2f}", ">= 0.8"
    )
    ratios.add_row("duplicate cost / fresh cost, end to end", f"{duplicate_cost:.2f}", "<= 0.3")
    ratios.add_row(
        "duplicate cost / fresh cost, in the worker", f"{duplicate_ms / fresh_ms:.2f}", "<= 0.3"
    )
    ratios.add_row("p99 / p50 at 70 % of peak", f"{p99 / p50:.2f}", "<= 3")
    console.print(ratios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
