"""The HTTP intake's throughput, printed as ratios against baselines from the same run.

    python scripts/bench_http.py                  # 3 rounds of 1000 requests, a few minutes
    python scripts/bench_http.py --rounds 1 --json

Against one `orderq serve` (Granian, --http-workers processes) and one `celery worker`:

  trivial       GET /healthz: the same server, no I/O — the ceiling of any route
  intake 202    POST /v1/orders, answered once committed (no worker consuming meanwhile)
  intake wait   POST /v1/orders with `Prefer: wait=30`: each request waits for its outcome
  e2e HTTP      place-order commands decided per second, POSTed (202) with the worker on
  e2e Python    the same, published with `producers.Publisher` (which records `queued`
                in the database before sending, like the intake)

Ratios: intake 202 / trivial, intake wait / trivial, e2e HTTP / e2e Python, from the
medians of `--rounds` rounds that interleave each pair of measurements. Every
client process keeps one connection open (HTTP/1.1 keep-alive) and sends its requests
back to back. Uses DATABASE_URL / CELERY_BROKER_URL (default: local database
`orderq_bench`, Redis db 9) and a private queue. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
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
os.environ["ORDERQ_COMMAND_QUEUE"] = f"bench-http-{TAG}"

import psycopg  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from orderq.http.api_keys import create_api_key  # noqa: E402
from orderq.schema import ensure_database_exists, upgrade_to_head  # noqa: E402
from orderq.settings import Settings  # noqa: E402
from producers.commands import PlaceOrder  # noqa: E402
from producers.database import build_engine, normalize_database_url  # noqa: E402
from producers.publisher import Publisher  # noqa: E402
from tests.support.http_server import ApiServer  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402

console = Console(stderr=True)
SETTINGS = Settings()
DB_URL = normalize_database_url(SETTINGS.require_database_url())
PG_DSN = make_url(DB_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def create_products(prefix: str, count: int, stock: int) -> list[str]:
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


# -- the HTTP load: client processes, one keep-alive connection each ------------------------


def _client(job: tuple[int, str, str, str, int, list[str], str, int]) -> list[str]:
    """Send `count` requests back to back; return the idempotency keys used."""
    index, host, token, kind, count, skus, run, wait = job
    connection = http.client.HTTPConnection(host, timeout=120)
    keys = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if wait:
        headers["Prefer"] = f"wait={wait}"
    for n in range(count):
        if kind == "trivial":
            connection.request("GET", "/healthz")
        else:
            key = f"{run}-{index}-{n}"
            body = {"customer_ref": "bench", "lines": [{"sku": skus[n % len(skus)], "qty": 1}]}
            connection.request(
                "POST", "/v1/orders", json.dumps(body), {**headers, "Idempotency-Key": key}
            )
            keys.append(key)
        response = connection.getresponse()
        response.read()
        if response.status >= 300 and not (kind == "trivial" and response.status == 200):
            raise RuntimeError(f"{kind}: HTTP {response.status}: {response.read()[:300]!r}")
    connection.close()
    return keys


def http_load(
    pool: multiprocessing.pool.Pool,
    host: str,
    token: str,
    kind: str,
    total: int,
    clients: int,
    skus: list[str],
    wait: int = 0,
) -> tuple[float, list[str]]:
    """(requests per second, keys sent) for `total` requests from `clients` processes."""
    run = f"b{TAG}{uuid.uuid4().hex[:6]}"
    jobs = [(i, host, token, kind, total // clients, skus, run, wait) for i in range(clients)]
    started = time.perf_counter()
    results = pool.map(_client, jobs)
    elapsed = time.perf_counter() - started
    return clients * (total // clients) / elapsed, [key for keys in results for key in keys]


# -- outcomes -----------------------------------------------------------------------------


def decided(keys: list[str]) -> int:
    with psycopg.connect(PG_DSN) as connection:
        return connection.execute(
            "SELECT count(*) FROM command_ledger WHERE idempotency_key = ANY(%s) "
            "AND status IN ('succeeded', 'rejected')",
            (keys,),
        ).fetchone()[0]


def wait_decided(keys: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while decided(keys) < len(keys):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(keys) - decided(keys)} commands undecided")
        time.sleep(0.05)


def end_to_end(submit: Callable[[], list[str]]) -> float:
    """Commands decided per second: from the first submission to the last outcome."""
    started = time.perf_counter()
    keys = submit()
    wait_decided(keys)
    return len(keys) / (time.perf_counter() - started)


def publish_orders(total: int, threads: int, skus: list[str]) -> list[str]:
    """`Publisher.publish` from `threads` threads (one publisher each); the keys."""
    commands = [
        PlaceOrder(
            key=f"py-{TAG}-{uuid.uuid4().hex}",
            customer_ref="bench",
            lines=[{"sku": skus[i % len(skus)], "qty": 1}],
        )
        for i in range(total)
    ]
    engine = build_engine(SETTINGS, pool_size=threads, max_overflow=0)

    def publish(part: list[PlaceOrder]) -> None:
        with Publisher(SETTINGS, engine=engine) as publisher:
            for command in part:
                publisher.publish(command)

    workers = [
        threading.Thread(target=publish, args=(commands[i::threads],)) for i in range(threads)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    engine.dispose()
    return [command.key for command in commands]


def drain(worker: WorkerProcess) -> None:
    """Wait until the worker emptied the queue (the intake run left it full)."""
    client = redis.Redis.from_url(SETTINGS.require_broker_url())
    while client.llen(SETTINGS.command_queue) + client.hlen("unacked") > 0:
        time.sleep(0.05)
    client.close()


def forget_queue() -> None:
    """Remove the private queue's keys (and kombu's bindings of it) from Redis."""
    client = redis.Redis.from_url(SETTINGS.require_broker_url())
    keys = list(client.scan_iter(match=f"*{SETTINGS.command_queue}*"))
    if keys:
        client.delete(*keys)
    client.close()


MEASUREMENTS = ("trivial", "intake_202", "intake_wait", "e2e_http", "e2e_python")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are printed)")
    parser.add_argument("--clients", type=int, default=8, help="client processes (connections)")
    parser.add_argument("--http-workers", type=int, default=1, help="server processes")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--skus", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    ensure_database_exists(DB_URL)
    upgrade_to_head(DB_URL)
    skus = create_products(f"HB{TAG}".upper(), args.skus, 10_000_000)
    client_name = f"bench-{TAG}"
    engine = build_engine(SETTINGS, pool_size=1)
    token = create_api_key(engine, client_name).token
    engine.dispose()
    stored = lambda keys: [f"@{client_name}/{key}" for key in keys]  # noqa: E731
    console.print(
        f"database {make_url(DB_URL).render_as_string()} · queue {SETTINGS.command_queue}"
    )

    server = ApiServer(env={"ORDERQ_HTTP_WORKERS": str(args.http_workers)}).start()
    worker = WorkerProcess(concurrency=args.concurrency, name="bench-http")
    host = f"127.0.0.1:{server.port}"
    rounds: dict[str, list[float]] = {name: [] for name in MEASUREMENTS}
    try:
        with multiprocessing.Pool(args.clients) as pool:
            load = lambda kind, wait=0: http_load(  # noqa: E731
                pool, host, token, kind, args.requests, args.clients, skus, wait
            )
            load("trivial")  # warm-up: connections, the app's first requests
            accepted: list[str] = []
            # Each measurement is taken in every round, interleaved with the one it is
            # compared with, so a change in the machine's load hits both alike.
            for n in range(args.rounds):
                with console.status(f"round {n + 1}: trivial endpoint, intake (no worker)"):
                    rounds["trivial"].append(load("trivial")[0])
                    rate, keys = load("post")
                    rounds["intake_202"].append(rate)
                    accepted += keys
            worker.start()
            with console.status("the worker drains the intake runs"):
                wait_decided(stored(accepted))
                drain(worker)
            for n in range(args.rounds):
                with console.status(f"round {n + 1}: Prefer: wait, end to end HTTP / Python"):
                    rounds["intake_wait"].append(load("post", wait=30)[0])
                    rounds["e2e_http"].append(end_to_end(lambda: stored(load("post")[1])))
                    rounds["e2e_python"].append(
                        end_to_end(lambda: publish_orders(args.requests, args.clients, skus))
                    )
    finally:
        worker.stop()
        server.stop()
        forget_queue()
    figures = {name: statistics.median(values) for name, values in rounds.items()}

    ratios = {
        "intake_202/trivial": figures["intake_202"] / figures["trivial"],
        "intake_wait/trivial": figures["intake_wait"] / figures["trivial"],
        "e2e_http/e2e_python": figures["e2e_http"] / figures["e2e_python"],
    }
    if args.json:
        print(
            json.dumps(
                {
                    "figures": figures,
                    "rounds": rounds,
                    "ratios": ratios,
                    "clients": args.clients,
                    "requests": args.requests,
                    "http_workers": args.http_workers,
                    "worker_concurrency": args.concurrency,
                }
            )
        )
        return 0
    table = Table(
        "measurement", "median", "rounds", title="orderq HTTP benchmark (one run, one machine)"
    )
    labels = {
        "trivial": (f"trivial GET /healthz, {args.clients} connections", "req/s"),
        "intake_202": ("POST /v1/orders -> 202 (committed)", "req/s"),
        "intake_wait": ("POST /v1/orders, Prefer: wait -> 201", "req/s"),
        "e2e_http": ("end to end through HTTP", "commands/s"),
        "e2e_python": ("end to end through the Python publisher", "commands/s"),
    }
    for name, (label, unit) in labels.items():
        spread = " ".join(f"{value:,.0f}" for value in rounds[name])
        table.add_row(label, f"{figures[name]:,.0f} {unit}", spread)
    Console().print(table)
    summary = Table("ratio", "value", title="ratios against this run's baselines")
    for name, value in ratios.items():
        summary.add_row(name, f"{value:.2f}")
    Console().print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
