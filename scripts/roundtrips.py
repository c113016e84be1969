"""Database round trips per command, counted on the wire (whatever the worker's code does).

    python scripts/roundtrips.py                  # 500 place-orders, then the same again
    python scripts/roundtrips.py --quick --json   # 100 of each, one JSON object on stdout
    python scripts/roundtrips.py --no-batching    # the worker with ORDERQ_BATCH_MAX_SIZE=1
    python scripts/roundtrips.py --batch-size 64 --batch-wait-ms 2

A counting TCP proxy (tests/support/counting_proxy.py) sits between a real
`celery worker` (DATABASE_URL through the proxy) and PostgreSQL. The worker warms up
(every pool process connected, the fresh and the duplicate path each run once), then
is paused; N fresh place-orders are published, the worker resumed, and the wire
counted until every outcome is stored and the queue is empty. Then the same N again:
duplicate deliveries. Then the worker idles, once for as long as each phase took, and
that idle traffic (pool and maintenance housekeeping, if any) is subtracted.

A *turn* is a client send that follows data from the server on one connection: one
wait for the network and the server. Statements are Query and Execute protocol
messages (pipelined or not). Figures are per command.

Uses DATABASE_URL / CELERY_BROKER_URL (default: local PostgreSQL database
`orderq_roundtrips`, Redis db 10) and a private queue. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TAG = uuid.uuid4().hex[:8].upper()
os.environ.setdefault(
    "DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/orderq_roundtrips"
)
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/10")
os.environ["ORDERQ_COMMAND_QUEUE"] = f"roundtrips-{TAG}"

import psycopg  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from orderq.schema import ensure_database_exists, upgrade_to_head  # noqa: E402
from producers.commands import PlaceOrder  # noqa: E402
from producers.database import normalize_database_url  # noqa: E402
from producers.publisher import Publisher  # noqa: E402
from tests.support.batch_options import (  # noqa: E402
    BATCH_SIZE_ENV,
    BATCH_WAIT_ENV,
    add_batch_options,
    batch_env,
)
from tests.support.counting_proxy import CountingProxy, Traffic  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402
from worker.settings import WorkerSettings  # noqa: E402

console = Console()
SETTINGS = WorkerSettings()
DB_URL = normalize_database_url(SETTINGS.require_database_url())
PG_DSN = make_url(DB_URL).set(drivername="postgresql").render_as_string(hide_password=False)
QUEUE = SETTINGS.command_queue


def create_products(count: int) -> list[str]:
    """Products with plenty of stock, inserted directly (set-based, not counted)."""
    skus = [f"RT{TAG}-{i}" for i in range(count)]
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO products (sku, name, price_cents) SELECT unnest(%s::text[]), 'rt', 100",
            (skus,),
        )
        connection.execute(
            "INSERT INTO stock_levels (product_id, on_hand) "
            "SELECT id, 10000000 FROM products WHERE sku = ANY(%s)",
            (skus,),
        )
    return skus


def orders_for(skus: list[str], count: int, label: str) -> list[PlaceOrder]:
    return [
        PlaceOrder(
            key=f"rt-{TAG}-{label}-{i}",
            customer_ref="rt",
            lines=[{"sku": skus[i % len(skus)], "qty": 1}],
        )
        for i in range(count)
    ]


def publish(commands: Sequence[PlaceOrder]) -> None:
    with Publisher(SETTINGS, track=False) as publisher:
        for command in commands:
            publisher.publish(command)


def outcomes_recorded(keys: list[str]) -> int:
    with psycopg.connect(PG_DSN) as connection:
        return connection.execute(
            "SELECT count(*) FROM command_ledger WHERE idempotency_key = ANY(%s) "
            "AND status IN ('succeeded', 'rejected')",
            (keys,),
        ).fetchone()[0]


def statuses(keys: list[str]) -> dict[str, int]:
    with psycopg.connect(PG_DSN) as connection:
        rows = connection.execute(
            "SELECT coalesce(reason, status), count(*) FROM command_ledger "
            "WHERE idempotency_key = ANY(%s) GROUP BY 1",
            (keys,),
        ).fetchall()
    return dict(rows)


def settled(keys: list[str], timeout: float = 120.0) -> None:
    """Every key decided and the queue empty (the worker acks after its commit)."""
    client = redis.Redis.from_url(SETTINGS.require_broker_url())
    deadline = time.time() + timeout
    while time.time() < deadline:
        if client.llen(QUEUE) + client.hlen("unacked") == 0 and outcomes_recorded(keys) == len(
            keys
        ):
            return
        time.sleep(0.02)
    raise TimeoutError(f"{len(keys)} commands not settled after {timeout} s")


class CountedWorker(WorkerProcess):
    def pause(self) -> None:
        os.killpg(self.pid, 19)  # SIGSTOP

    def resume(self) -> None:
        os.killpg(self.pid, 18)  # SIGCONT


def phase(
    worker: CountedWorker, proxy: CountingProxy, commands: list[PlaceOrder]
) -> tuple[Traffic, float]:
    """Traffic and duration of the worker taking `commands` from a full queue."""
    worker.pause()
    publish(commands)
    before = proxy.snapshot()
    started = time.perf_counter()
    worker.resume()
    settled([command.key for command in commands])
    time.sleep(0.2)  # anything the worker sends just after its last ack
    return proxy.snapshot() - before, time.perf_counter() - started


def idle(proxy: CountingProxy, seconds: float) -> Traffic:
    before = proxy.snapshot()
    time.sleep(seconds)
    return proxy.snapshot() - before


def per_command(traffic: Traffic, idle_traffic: Traffic, count: int) -> dict[str, Any]:
    net = traffic - idle_traffic
    messages = {kind: n / count for kind, n in sorted(net.messages.items())}
    return {
        "round_trips": net.turns / count,
        "statements": net.statements / count,
        "client_bytes": net.client_bytes / count,
        "server_bytes": net.server_bytes / count,
        "protocol_messages": messages,
        "raw": {
            "turns": traffic.turns,
            "statements": traffic.statements,
            "client_bytes": traffic.client_bytes,
            "server_bytes": traffic.server_bytes,
            "connections_opened": traffic.connections,
        },
        "idle": {
            "turns": idle_traffic.turns,
            "statements": idle_traffic.statements,
            "client_bytes": idle_traffic.client_bytes,
            "server_bytes": idle_traffic.server_bytes,
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, help="fresh commands (default 500, quick 100)")
    parser.add_argument("--skus", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--quick", action="store_true", help="100 commands per phase")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_batch_options(parser)
    args = parser.parse_args(argv)
    if args.orders is None:
        args.orders = 100 if args.quick else 500
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_database_exists(DB_URL)
    upgrade_to_head(DB_URL)
    skus = create_products(args.skus)
    server = make_url(DB_URL)
    extra_env = batch_env(args)
    with CountingProxy(server.host or "127.0.0.1", server.port or 5432) as proxy:
        # sslmode=disable: the proxy reads the protocol messages (the server has SSL off
        # here anyway; with it on, only turns and bytes would be meaningful)
        through_proxy = server.set(
            host="127.0.0.1", port=proxy.port, query={**server.query, "sslmode": "disable"}
        ).render_as_string(hide_password=False)
        worker = CountedWorker(
            concurrency=args.concurrency,
            name="roundtrips",
            env={"DATABASE_URL": through_proxy, **extra_env},
        )
        with worker.running():
            warm = orders_for(skus, 10 * args.concurrency, "warm")
            for _ in range(2):  # fresh, then duplicates: both paths connected and cached
                publish(warm)
                settled([command.key for command in warm])
            fresh = orders_for(skus, args.orders, "fresh")
            with console.status("fresh place-orders"):
                fresh_traffic, fresh_seconds = phase(worker, proxy, fresh)
            with console.status("the same again: duplicates"):
                duplicate_traffic, duplicate_seconds = phase(worker, proxy, fresh)
            with console.status("idle baseline"):
                fresh_idle = idle(proxy, fresh_seconds)
                duplicate_idle = idle(proxy, duplicate_seconds)
    report = {
        "tag": TAG,
        "commands": args.orders,
        "worker_concurrency": args.concurrency,
        "batch": {"env": {BATCH_SIZE_ENV: None, BATCH_WAIT_ENV: None, **extra_env}},
        "outcomes": statuses([command.key for command in fresh]),
        "seconds": {"fresh": fresh_seconds, "duplicate": duplicate_seconds},
        "fresh": per_command(fresh_traffic, fresh_idle, args.orders),
        "duplicate": per_command(duplicate_traffic, duplicate_idle, args.orders),
    }
    print_table(report)
    return report


def print_table(report: dict[str, Any]) -> None:
    table = Table(
        "per command",
        "fresh",
        "duplicate",
        title=f"database wire traffic, {report['commands']} place-orders "
        f"(batch env {report['batch']['env']})",
    )
    fresh, duplicate = report["fresh"], report["duplicate"]
    table.add_row("round trips", f"{fresh['round_trips']:.2f}", f"{duplicate['round_trips']:.2f}")
    table.add_row("statements", f"{fresh['statements']:.2f}", f"{duplicate['statements']:.2f}")
    table.add_row(
        "bytes client -> server", f"{fresh['client_bytes']:.0f}", f"{duplicate['client_bytes']:.0f}"
    )
    table.add_row(
        "bytes server -> client", f"{fresh['server_bytes']:.0f}", f"{duplicate['server_bytes']:.0f}"
    )
    table.add_row(
        "idle turns subtracted (whole phase)",
        str(fresh["idle"]["turns"]),
        str(duplicate["idle"]["turns"]),
    )
    table.add_row(
        "connections opened in the phase",
        str(fresh["raw"]["connections_opened"]),
        str(duplicate["raw"]["connections_opened"]),
    )
    console.print(table)
    console.print(f"outcomes of the fresh commands: {report['outcomes']}")


def main(argv: Sequence[str] | None = None) -> int:
    global console
    args = parse_args(argv)
    if args.json:
        console = Console(stderr=True)
        with contextlib.redirect_stdout(sys.stderr):
            report = run(args)
        print(json.dumps(report, indent=2))
    else:
        run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
