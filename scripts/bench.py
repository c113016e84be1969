"""Throughput and latency of orderq, printed as ratios against baselines from the same run.

    python scripts/bench.py                  # defaults: a few thousand commands, ~3 minutes
    python scripts/bench.py --quick          # the same measurements, under a minute
    python scripts/bench.py --quick --json   # one JSON object on stdout, tables on stderr
    python scripts/bench.py --no-batching    # the worker with ORDERQ_BATCH_MAX_SIZE=1
    python scripts/bench.py --batch-size 64 --batch-wait-ms 2
    python scripts/bench.py --profile in-worker.html   # pyinstrument, in-worker path only

Baselines (measured here, now, on this machine):
  bare        raw psycopg, 8 connections, the place-order transaction shape
              (lock stock FOR UPDATE in id order, insert order + item, update stock,
              insert movement, commit) — spread over many SKUs, and on one hot SKU
  bare+ledger the same plus orderq's exactly-once bookkeeping (attempt upsert, ledger
              claim, savepoint, outcome update): the SQL orderq really sends
  noop        a Celery task that does nothing: Redis broker, prefork x2, late ack,
              prefetch of a batch per process (the worker's own settings)

Measured through the real path (publisher -> Redis -> `celery worker` -> PostgreSQL):
  end-to-end place-order throughput vs the combined bound 1/(1/bare + 1/noop),
  one hot SKU vs the bare hot-row rate, a duplicate delivery vs a fresh command,
  p99/p50 latency at 70 % of the sustained peak (commands published while the worker
  runs, as in the latency test itself; the drain peak, measured with the queue filled
  beforehand, is not reachable while a publisher shares the machine — 70 % of it is
  also printed, for comparison), and library loans: checkouts and
  returns per second with 0 %, 10 % and 50 % of the checkouts racing another checkout
  for the same copy (the losers are rejected `copy_not_available`), with the loan
  invariants checked after each level.

Uses DATABASE_URL / CELERY_BROKER_URL (default: local PostgreSQL database
`orderq_bench`, Redis db 9) and a private queue. Prints figures; asserts nothing
(except that no command is lost). docs/performance.md explains how to read it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

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
from producers.commands import CheckoutCopy, Command, PlaceOrder, ReturnCopy  # noqa: E402
from producers.database import normalize_database_url  # noqa: E402
from producers.publisher import Publisher  # noqa: E402
from tests.support.batch_options import (  # noqa: E402
    BATCH_SIZE_ENV,
    BATCH_WAIT_ENV,
    add_batch_options,
    batch_env,
)
from tests.support.workers import WorkerProcess  # noqa: E402
from worker.settings import WorkerSettings  # noqa: E402

console = Console()  # stderr under --json (main), so stdout carries only the JSON
SETTINGS = WorkerSettings()
DB_URL = normalize_database_url(SETTINGS.require_database_url())
PG_DSN = make_url(DB_URL).set(drivername="postgresql").render_as_string(hide_password=False)
QUEUE = SETTINGS.command_queue

#: The worker's batching knobs (read by the worker from its environment).

#: ratio name -> (comparison, target)
TARGETS: dict[str, tuple[str, float]] = {
    "end_to_end_vs_bound": (">=", 1.0),
    "hot_vs_bare_hot": (">=", 1.0),
    "duplicate_vs_fresh": ("<=", 0.3),
    "p99_vs_p50": ("<=", 3.0),
}
RACING_LEVELS = (0.0, 0.1, 0.5)


# -- fixtures -----------------------------------------------------------------------------


def create_products(prefix: str, count: int, stock: int) -> list[str]:
    """Products with plenty of stock, inserted directly (set-based). SKUs upper-case:
    a command's SKU is upper-cased on validation, so a lower-case one is never found."""
    skus = [f"{prefix}-{i}".upper() for i in range(count)]
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


def create_library(prefix: str, copies: int, members: int) -> tuple[list[str], list[str]]:
    """`copies` available copies, each of its own work (a return locks the copy's work:
    one work for all would serialise the returns), and `members` active members, all
    inserted directly (set-based). Returns (barcodes, member numbers)."""
    works = [f"{prefix}-W{i}" for i in range(copies)]
    barcodes = [f"{prefix}-C{i}" for i in range(copies)]
    numbers = [f"{prefix}-M{i}" for i in range(members)]
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO works (work_code, title) SELECT unnest(%s::text[]), 'bench'", (works,)
        )
        connection.execute(
            "INSERT INTO copies (work_id, barcode, status) "
            "SELECT w.id, c.barcode, 'available' "
            "FROM unnest(%s::text[], %s::text[]) AS c(work_code, barcode) "
            "JOIN works w ON w.work_code = c.work_code",
            (works, barcodes),
        )
        connection.execute(
            "INSERT INTO members (member_number, name, status, loan_limit) "
            "SELECT unnest(%s::text[]), 'bench', 'active', 5",
            (numbers,),
        )
    return barcodes, numbers


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
    """Publish `count` messages while the worker is paused, then time the drain (from
    the first acknowledgement to the last: the worker acks after the commit)."""
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


def publish_commands(commands: Sequence[Command]) -> Callable[[], None]:
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


def wait_for_outcomes(keys: list[str], timeout: float = 60.0) -> int:
    deadline = time.time() + timeout
    while (done := outcomes_recorded(keys)) < len(keys) and time.time() < deadline:
        time.sleep(0.1)
    return done


def sustained_rate(skus: list[str], count: int) -> float:
    """Commands per second end to end while they are being published: from the first
    publish to the last outcome, the worker running throughout (the drain rate fills
    the queue first, so the publisher does not compete with the worker for the CPUs)."""
    commands = orders_for(skus, count)
    started = time.time()
    publish_commands(commands)()
    keys = [command.key for command in commands]
    lost = len(keys) - wait_for_outcomes(keys)
    assert not lost, f"{lost} commands without an outcome"
    with psycopg.connect(PG_DSN) as connection:
        (last,) = connection.execute(
            "SELECT extract(epoch FROM max(completed_at)) FROM command_ledger "
            "WHERE idempotency_key = ANY(%s)",
            (keys,),
        ).fetchone()
    return count / (float(last) - started)


def latency_summary(rate: float, seconds: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "rate": rate,
        "seconds": seconds,
        "n": len(latencies),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p90_ms": percentile(latencies, 0.90) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
        # the end of a command's latency is the ledger's completed_at as the worker
        # writes it: clock_timestamp() as its outcome is stored, just before the commit
        "completion_clock": "command_ledger.completed_at",
    }


def latencies_at(rate: float, seconds: float, skus: list[str]) -> list[float]:
    """Publish at a steady `rate`; latency = ledger completion - publish time."""
    commands = orders_for(skus, max(1, int(rate * seconds)))
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
    keys = list(sent)
    wait_for_outcomes(keys)
    with psycopg.connect(PG_DSN) as connection:
        rows = connection.execute(
            "SELECT idempotency_key, extract(epoch FROM completed_at) FROM command_ledger "
            "WHERE idempotency_key = ANY(%s)",
            (keys,),
        ).fetchall()
    return sorted(float(done) - sent[key] for key, done in rows)


# -- in the worker, without broker or Celery ----------------------------------------------


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
    statuses, reasons = ledger_summary([message["key"] for message in messages])
    if statuses["succeeded"] != count:
        console.print(f"[red]in-worker place-orders ended as {dict(statuses)} {dict(reasons)}")
    return timings[0], timings[1]


def profile_in_worker(skus: list[str], count: int, target: Path) -> list[Path]:
    """pyinstrument profiles of `count` fresh in-worker place-orders and of the same
    keys again as duplicates: `target` (HTML if it ends in .html, else text) and
    `target` with `-duplicates` before the suffix."""
    from pyinstrument import Profiler

    from worker.service.bootstrap import bootstrap

    services = bootstrap(SETTINGS, send_command=lambda *_: None)
    runner = services.runner
    for message in [command.message() for command in orders_for(skus, 50)]:
        runner.run(message, "place_order")  # warm the pool, the caches, the imports
    messages = [command.message() for command in orders_for(skus, count)]
    written = []
    for path in (target, target.with_name(f"{target.stem}-duplicates{target.suffix}")):
        profiler = Profiler()  # 1 ms sampling: little overhead
        profiler.start()
        for message in messages:
            runner.run(message, "place_order")
        profiler.stop()
        if path.suffix == ".html":
            path.write_text(profiler.output_html())
        else:
            path.write_text(profiler.output_text(unicode=True, show_all=False))
        written.append(path)
    services.close()
    return written


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


# -- library loans --------------------------------------------------------------------------


def racing_checkouts(
    barcodes: list[str], members: list[str], count: int, racing: float, level: str
) -> tuple[list[CheckoutCopy], int]:
    """`count` checkouts, each by its own member; a fraction `racing` of them come in
    pairs after the same copy, published back to back so the pool's processes (or one
    batch) take them at the same time. Pairs sit at random places among the others.
    Returns the commands and the number of pairs (= the checkouts that must lose)."""
    pairs = round(count * racing / 2)
    singles = count - 2 * pairs
    units = [[barcode] for barcode in barcodes[:singles]]
    units += [[barcode, barcode] for barcode in barcodes[singles : singles + pairs]]
    random.Random(level).shuffle(units)
    targets = [barcode for unit in units for barcode in unit]
    commands = [
        CheckoutCopy(key=f"bench-{TAG}-co{level}-{i}", member=member, barcode=barcode)
        for i, (member, barcode) in enumerate(zip(members, targets, strict=True))
    ]
    return commands, pairs


def ledger_summary(keys: list[str]) -> tuple[Counter[str], Counter[str]]:
    """(statuses, rejection reasons) of the keys' outcomes."""
    with psycopg.connect(PG_DSN) as connection:
        rows = connection.execute(
            "SELECT status, reason FROM command_ledger WHERE idempotency_key = ANY(%s)", (keys,)
        ).fetchall()
    return Counter(status for status, _ in rows), Counter(r for _, r in rows if r is not None)


def on_loan(barcodes: list[str]) -> list[str]:
    """The copies among `barcodes` with an active loan."""
    with psycopg.connect(PG_DSN) as connection:
        rows = connection.execute(
            "SELECT c.barcode FROM copies c JOIN loans l ON l.copy_id = c.id "
            "AND l.returned_at IS NULL WHERE c.barcode = ANY(%s) ORDER BY c.id",
            (barcodes,),
        ).fetchall()
    return [barcode for (barcode,) in rows]


def loan_state(barcodes: list[str]) -> dict[str, int]:
    """Counts that must agree: the copy-level invariants, over the whole database for
    `lent_twice` and over these copies for the rest."""
    with psycopg.connect(PG_DSN) as connection:
        (lent_twice,) = connection.execute(
            "SELECT count(*) FROM (SELECT copy_id FROM loans WHERE returned_at IS NULL "
            "GROUP BY 1 HAVING count(*) > 1) AS twice"
        ).fetchone()
        on_loan, active, mismatched = connection.execute(
            """
            SELECT count(*) FILTER (WHERE c.status = 'on_loan'),
                   count(l.id),
                   count(*) FILTER (WHERE (c.status = 'on_loan') <> (l.id IS NOT NULL))
            FROM copies c LEFT JOIN loans l ON l.copy_id = c.id AND l.returned_at IS NULL
            WHERE c.barcode = ANY(%s)
            """,
            (barcodes,),
        ).fetchone()
    return {
        "copies_lent_twice": lent_twice,
        "copies_on_loan": on_loan,
        "active_loans": active,
        "copy_status_mismatches": mismatched,
    }


def loans_level(worker: BenchWorker, racing: float, count: int, level: str) -> dict[str, Any]:
    """Checkouts then returns at one racing level; figures plus invariant checks."""
    pairs = round(count * racing / 2)
    barcodes, members = create_library(f"L{TAG.upper()}{level}", count - pairs, count)
    checkouts, pairs = racing_checkouts(barcodes, members, count, racing, level)
    keys = [command.key for command in checkouts]
    checkout_rate = drain_rate(worker, len(checkouts), publish_commands(checkouts))
    decided = wait_for_outcomes(keys)
    statuses, reasons = ledger_summary(keys)
    after_checkouts = loan_state(barcodes)

    returns = [ReturnCopy(key=f"bench-{TAG}-ret{level}-{b}", barcode=b) for b in on_loan(barcodes)]
    return_rate = drain_rate(worker, len(returns), publish_commands(returns))
    return_keys = [command.key for command in returns]
    wait_for_outcomes(return_keys)
    return_statuses, return_reasons = ledger_summary(return_keys)
    after_returns = loan_state(barcodes)

    problems = []
    if decided != count:
        problems.append(f"{count - decided} checkouts without an outcome")
    if statuses["succeeded"] != len(barcodes):
        problems.append(f"{statuses['succeeded']} checkouts succeeded for {len(barcodes)} copies")
    if after_checkouts["copies_lent_twice"] or after_returns["copies_lent_twice"]:
        problems.append("a copy has two active loans")
    if after_checkouts["copy_status_mismatches"] or after_returns["copy_status_mismatches"]:
        problems.append("copy status disagrees with its active loan")
    if after_checkouts["active_loans"] != len(barcodes):
        problems.append(f"{after_checkouts['active_loans']} active loans, {len(barcodes)} lent")
    if return_statuses["succeeded"] != len(returns) or after_returns["active_loans"]:
        problems.append(f"returns: {dict(return_statuses)} {dict(return_reasons)}")
    return {
        "racing": racing,
        "checkouts": count,
        "racing_pairs": pairs,
        "checkouts_per_s": checkout_rate,
        "returns": len(returns),
        "returns_per_s": return_rate,
        "succeeded": statuses["succeeded"],
        "rejected": statuses["rejected"],
        "expected_rejected": pairs,
        "rejection_reasons": dict(reasons),
        "after_checkouts": after_checkouts,
        "after_returns": after_returns,
        "invariants_ok": not problems,
        "problems": problems,
    }


# -- reporting ------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


def batch_facts(env: dict[str, str]) -> dict[str, Any]:
    """The batch settings the worker was started with (None: the worker's default)."""
    size = env.get(BATCH_SIZE_ENV, os.environ.get(BATCH_SIZE_ENV))
    wait = env.get(BATCH_WAIT_ENV, os.environ.get(BATCH_WAIT_ENV))
    return {
        "env": {BATCH_SIZE_ENV: size, BATCH_WAIT_ENV: wait},
        "max_size": int(size) if size is not None else None,
        "max_wait_ms": float(wait) if wait is not None else None,
        # False on a worker that predates batching: it ignores both variables
        "worker_reads_batch_settings": "batch_max_size" in WorkerSettings.model_fields,
    }


def machine_facts() -> dict[str, Any]:
    import celery

    with psycopg.connect(PG_DSN) as connection:
        (server_version,) = connection.execute("SHOW server_version").fetchone()
    broker = redis.Redis.from_url(SETTINGS.require_broker_url())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres_server": server_version,
        "redis_server": broker.info("server").get("redis_version"),
        "celery": celery.__version__,
        "psycopg": psycopg.__version__,
        "git_commit": commit or None,
    }


def judged(ratios: dict[str, float]) -> dict[str, dict[str, Any]]:
    targets = {}
    for name, (comparison, target) in TARGETS.items():
        value = ratios[name]
        met = value >= target if comparison == ">=" else value <= target
        targets[name] = {"value": value, "target": f"{comparison} {target}", "met": met}
    return targets


def print_tables(report: dict[str, Any]) -> None:
    figures, ratios, latency = report["figures"], report["ratios"], report["latency"]
    table = Table("measurement", "figure", title="orderq benchmark (one run, one machine)")
    table.add_row("bare psycopg, place-order shape, 8 conns", f"{figures['bare']:,.0f} tx/s")
    table.add_row("bare psycopg, one hot row", f"{figures['bare_hot']:,.0f} tx/s")
    table.add_row("bare psycopg + ledger bookkeeping", f"{figures['bare_ledger']:,.0f} tx/s")
    table.add_row("celery no-op, prefork", f"{figures['noop']:,.0f} tasks/s")
    table.add_row("combined bound 1/(1/bare + 1/noop)", f"{figures['bound']:,.0f} /s")
    table.add_row("end-to-end place-order", f"{figures['e2e']:,.0f} /s")
    table.add_row("end-to-end, one hot SKU", f"{figures['e2e_hot']:,.0f} /s")
    table.add_row("duplicate deliveries", f"{figures['duplicates']:,.0f} /s")
    table.add_row(
        "in the worker, no broker: fresh / duplicate",
        f"{figures['in_worker_fresh_ms']:.2f} ms / {figures['in_worker_duplicate_ms']:.2f} ms",
    )
    table.add_row("end to end while publishing (sustained)", f"{figures['sustained']:,.0f} /s")
    for name, shown_latency in (
        ("sustained", latency),
        ("drain", report["latency_at_drain_peak"]),
    ):
        table.add_row(
            f"latency at {shown_latency['rate']:,.0f}/s, 70 % of the {name} peak "
            f"(n={shown_latency['n']})",
            f"p50 {shown_latency['p50_ms']:.1f} ms · p99 {shown_latency['p99_ms']:.1f} ms",
        )
    for level in report["loans"]["levels"]:
        table.add_row(
            f"loans, {level['racing']:.0%} racing: checkouts / returns",
            f"{level['checkouts_per_s']:,.0f} /s / {level['returns_per_s']:,.0f} /s · "
            f"{level['succeeded']} lent, {level['rejected']} rejected · invariants "
            + ("ok" if level["invariants_ok"] else "BROKEN: " + "; ".join(level["problems"])),
        )
    console.print(table)

    shown = Table("ratio", "value", "target", title="ratios against this run's baselines")
    for name, value in ratios.items():
        target = report["targets"].get(name)
        verdict = f"{target['target']} ({'met' if target['met'] else 'missed'})" if target else ""
        shown.add_row(name, f"{value:.2f}", verdict)
    console.print(shown)
    batch = report["batch"]
    console.print(
        f"worker batch settings: {batch['env']} "
        f"(worker reads them: {batch['worker_reads_batch_settings']})"
    )


@contextlib.contextmanager
def stdout_to_stderr(active: bool) -> Iterator[None]:
    """Under --json: anything printed on the way lands on stderr."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, help="commands per measurement (default 3000)")
    parser.add_argument("--skus", type=int, help="products the orders spread over (default 500)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--latency-seconds", type=float, help="latency window (default 10)")
    parser.add_argument("--loans", type=int, help="checkouts per racing level (default 1000)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller counts and a shorter latency window: under a minute on 2 cores",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object on stdout; tables go to stderr"
    )
    add_batch_options(parser)
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="only profile in-worker place-orders with pyinstrument (FILE.html or text) "
        "and their duplicates (FILE-duplicates)",
    )
    parser.add_argument(
        "--guards",
        action="store_true",
        help="only compare the ways the session timeouts reach the server (docs/scaling.md)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "orders": 500 if quick else 3000,
        "skus": 200 if quick else 500,
        "latency_seconds": 3.0 if quick else 10.0,
        "loans": 300 if quick else 1000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    global console
    args = parse_args(argv)
    if args.json:
        console = Console(stderr=True)
    with stdout_to_stderr(args.json):
        report = run(args)
    if report is not None and args.json:
        print(json.dumps(report, indent=2, allow_nan=False, default=str))
    return 0


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    begun = time.perf_counter()
    ensure_database_exists(DB_URL)
    upgrade_to_head(DB_URL)
    skus = create_products(f"B{TAG}", args.skus, 10_000_000)
    (hot,) = create_products(f"H{TAG}", 1, 10_000_000)
    console.print(f"database {make_url(DB_URL).render_as_string()} · queue {QUEUE}")
    if args.guards:
        compare_guards(skus, min(args.orders, 2000))
        return None
    if args.profile:
        for path in profile_in_worker(skus, min(args.orders, 2000), args.profile):
            console.print(f"profile written: {path}")
        return None

    extra_env = batch_env(args)
    facts = machine_facts()
    figures: dict[str, float] = {}
    with console.status("bare psycopg, 8 connections"):
        figures["bare"] = bare_rate(skus, args.orders, with_ledger=False)
        figures["bare_hot"] = bare_rate([hot], args.orders, with_ledger=False)
        figures["bare_ledger"] = bare_rate(skus, args.orders, with_ledger=True)
    with console.status("in-worker cost of a fresh command and of a duplicate"):
        fresh_ms, duplicate_ms = in_worker_costs(skus, min(args.orders, 1000))
    figures["in_worker_fresh_ms"] = fresh_ms
    figures["in_worker_duplicate_ms"] = duplicate_ms

    worker = BenchWorker(concurrency=args.concurrency, name="bench", env=extra_env)
    worker.start()
    try:
        with console.status("celery no-op"):
            figures["noop"] = drain_rate(worker, args.orders, publish_noops(args.orders))
        with console.status("end-to-end place-order"):
            fresh = orders_for(skus, args.orders)
            figures["e2e"] = drain_rate(worker, len(fresh), publish_commands(fresh))
            lost = len(fresh) - wait_for_outcomes([c.key for c in fresh])
            assert not lost, f"{lost} commands without an outcome"
            statuses, reasons = ledger_summary([c.key for c in fresh])
            outcomes = {"e2e": {**statuses, **reasons}}
        with console.status("duplicate deliveries"):
            figures["duplicates"] = drain_rate(worker, len(fresh), publish_commands(fresh))
        with console.status("one hot SKU"):
            hot_orders = orders_for([hot], args.orders)
            figures["e2e_hot"] = drain_rate(worker, len(hot_orders), publish_commands(hot_orders))
            wait_for_outcomes([c.key for c in hot_orders])
            statuses, reasons = ledger_summary([c.key for c in hot_orders])
            outcomes["e2e_hot"] = {**statuses, **reasons}
        with console.status("end to end while publishing"):
            figures["sustained"] = sustained_rate(skus, args.orders)
        with console.status("latency at 70 % of the sustained peak"):
            rate = 0.7 * figures["sustained"]
            latency = latency_summary(
                rate, args.latency_seconds, latencies_at(rate, args.latency_seconds, skus)
            )
        with console.status("latency at 70 % of the drain peak"):
            rate = 0.7 * figures["e2e"]
            latency_drain = latency_summary(
                rate, args.latency_seconds, latencies_at(rate, args.latency_seconds, skus)
            )
        levels = []
        for n, racing in enumerate(RACING_LEVELS):
            with console.status(f"loans, {racing:.0%} of checkouts racing"):
                levels.append(loans_level(worker, racing, args.loans, f"R{n}"))
    finally:
        worker.stop()

    figures["bound"] = 1 / (1 / figures["bare"] + 1 / figures["noop"])
    figures["bound_ledger"] = 1 / (1 / figures["bare_ledger"] + 1 / figures["noop"])
    ratios = {
        "end_to_end_vs_bound": figures["e2e"] / figures["bound"],
        "hot_vs_bare_hot": figures["e2e_hot"] / figures["bare_hot"],
        "duplicate_vs_fresh": figures["e2e"] / figures["duplicates"],
        "p99_vs_p50": latency["p99_ms"] / latency["p50_ms"],
        # informational
        "p99_vs_p50_at_70pct_of_drain_peak": latency_drain["p99_ms"] / latency_drain["p50_ms"],
        "sustained_vs_drain_peak": figures["sustained"] / figures["e2e"],
        "end_to_end_vs_bound_ledger": figures["e2e"] / figures["bound_ledger"],
        "duplicate_vs_fresh_in_worker": duplicate_ms / fresh_ms,
        "noop_cost_vs_fresh": figures["e2e"] / figures["noop"],
        "end_to_end_vs_bare": figures["e2e"] / figures["bare"],
        "checkout_vs_place_order": levels[0]["checkouts_per_s"] / figures["e2e"],
        "checkout_50pct_racing_vs_none": levels[-1]["checkouts_per_s"]
        / levels[0]["checkouts_per_s"],
    }
    report = {
        "tag": TAG,
        "quick": args.quick,
        "machine": facts,
        "batch": batch_facts(extra_env),
        "worker_concurrency": args.concurrency,
        "counts": {
            "orders": args.orders,
            "skus": args.skus,
            "in_worker_commands": min(args.orders, 1000),
            "loan_checkouts_per_level": args.loans,
        },
        "figures": figures,
        # what the measured place-orders ended as: all `succeeded`, or the figures
        # measure something else
        "outcomes": outcomes,
        # at 70 % of the sustained peak (the target's), and of the drain peak
        "latency": latency,
        "latency_at_drain_peak": latency_drain,
        "loans": {
            "levels": levels,
            "invariants_ok": all(level["invariants_ok"] for level in levels),
        },
        "ratios": ratios,
        "targets": judged(ratios),
        "elapsed_seconds": time.perf_counter() - begun,
    }
    print_tables(report)
    return report


if __name__ == "__main__":
    raise SystemExit(main())
