"""1,000 concurrent clients through PgBouncer against a PostgreSQL that allows 100.

    python scripts/bench_pgbouncer.py                      # 1,000 clients, 20 s of load
    python scripts/bench_pgbouncer.py --clients 300 --seconds 10

Starts its own PostgreSQL (initdb into a temporary folder, max_connections=100, a
free port) so the machine's shared server is not touched, migrates orderq's schema
into it, and puts a private PgBouncer (transaction pooling) in front. Every client
is what an upstream system runs: one orderq engine (one connection, held open the
whole run) and one `Publisher` sharing it, doing outcome lookups (`lookup`) and
publishes (recorded as queued in PostgreSQL, sent to the broker's private queue).

The same number of clients is then pointed straight at PostgreSQL, to show what
PgBouncer saves them from. Prints throughput, latency percentiles, errors, and what
PgBouncer and PostgreSQL saw; removes the server, PgBouncer and the queue at the end.

Broker: CELERY_BROKER_URL (default redis://127.0.0.1:6379/0). Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import pwd
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support.pgbouncer import PgBouncer, free_port, pgbouncer_version  # noqa: E402

console = Console()
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVER_USER = "postgres"  # PostgreSQL refuses to run as root
DATABASE = "orderq_bench_pgbouncer"


def raise_file_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class PrivatePostgres:
    """A throwaway PostgreSQL: initdb in a temp folder, its own port, stopped and removed."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="orderq-bench-pg-"))
        self.data = self.folder / "data"

    def _as_server_user(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command

    def start(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        subprocess.run(
            self._as_server_user(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
            f"{self.folder} -c max_connections={self.max_connections} -c fsync=off"
        )
        subprocess.run(
            self._as_server_user(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-w",
                    "-l",
                    str(self.folder / "server.log"),
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                self._as_server_user(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
                ),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def _error_kind(error: BaseException) -> str:
    """One line per kind of error (keys and addresses taken out, so they group)."""
    detail = " ".join(str(error).split())
    detail = re.sub(r"[0-9a-f]{8}-[0-9a-f]{12}", "KEY", detail)
    detail = re.sub(r"port \d+", "port N", detail)
    return f"{error.__class__.__name__}: {detail[-160:]}"


# -- one client process: many client threads ---------------------------------------------


def client_process(
    index: int, clients: int, spec: dict, ready: multiprocessing.Queue, go, results
) -> None:
    """`clients` threads, each an upstream system with its own connection."""
    os.environ["DATABASE_URL"] = spec["url"]
    from orderq.settings import Settings
    from producers.commands import PlaceOrder
    from producers.database import build_engine
    from producers.outcomes import lookup
    from producers.publisher import Publisher

    settings = Settings(
        database_url=spec["url"],
        broker_url=spec["broker"],
        command_queue=spec["queue"],
        db_pooler=spec["pooler"],
        pool_timeout_seconds=120,
        db_connect_timeout_seconds=30,
    )
    latencies: dict[str, list[float]] = {"lookup": [], "publish": []}
    errors: Counter[str] = Counter()
    connected = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        rng = random.Random(index * 100_000 + number)
        engine = publisher = None
        try:
            engine = build_engine(settings, pool_size=1, max_overflow=0, pool_timeout=120)
            publisher = Publisher(settings, engine=engine)
            lookup(engine, "warm-up")  # the connection is open from here on
            with lock:
                connected[0] += 1
        except Exception as error:
            with lock:
                errors[f"connect: {_error_kind(error)}"] += 1
        barrier.wait()
        go.wait()
        mine: dict[str, list[float]] = {"lookup": [], "publish": []}
        if engine is not None and publisher is not None:
            deadline = time.monotonic() + spec["seconds"]
            while time.monotonic() < deadline:
                kind = "publish" if rng.random() < spec["publish_share"] else "lookup"
                started = time.perf_counter()
                try:
                    if kind == "lookup":
                        lookup(engine, f"{spec['tag']}-{rng.randrange(10_000)}")
                    else:
                        key = f"{spec['tag']}-{uuid.uuid4().hex[:12]}"
                        publisher.publish(
                            PlaceOrder(
                                key=key,
                                customer_ref="bench",
                                lines=[{"sku": rng.choice(spec["skus"]), "qty": 1}],
                            )
                        )
                    mine[kind].append(time.perf_counter() - started)
                except Exception as error:
                    with lock:
                        errors[f"{kind}: {_error_kind(error)}"] += 1
                time.sleep(rng.uniform(0, spec["think"]))
        with lock:
            for name, values in mine.items():
                latencies[name].extend(values)
        if publisher is not None:
            publisher.close()
        if engine is not None:
            engine.dispose()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    ready.put((index, connected[0]))
    for thread in threads:
        thread.join()
    results.put({"latencies": latencies, "errors": dict(errors)})


def run_clients(spec: dict, clients: int, processes: int, on_running=None) -> dict:
    """Start every client, wait until all have connected (or failed to), run the load."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    share = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    workers = [
        context.Process(target=client_process, args=(i, n, spec, ready, go, results))
        for i, n in enumerate(share)
    ]
    for worker in workers:
        worker.start()
    connected = sum(ready.get(timeout=600)[1] for _ in workers)
    started = time.monotonic()
    go.set()
    observed = on_running() if on_running else {}
    gathered = [results.get(timeout=spec["seconds"] + 600) for _ in workers]
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.join(60)
    latencies: dict[str, list[float]] = {"lookup": [], "publish": []}
    errors: Counter[str] = Counter()
    for part in gathered:
        for name, values in part["latencies"].items():
            latencies[name].extend(values)
        errors.update(part["errors"])
    return {
        "connected": connected,
        "elapsed": elapsed,
        "latencies": latencies,
        "errors": errors,
        "observed": observed,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def observe(bouncer: PgBouncer, server_dsn: str, seconds: float) -> dict:
    """Peak clients PgBouncer held and server connections PostgreSQL had, while running."""
    peak = {"pgbouncer_clients": 0, "pgbouncer_server_conns": 0, "postgres_backends": 0}
    deadline = time.monotonic() + seconds * 0.8
    # the admin console speaks only the simple query protocol: a client-side cursor
    with (
        psycopg.connect(
            bouncer.admin_dsn(), autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as admin,
        psycopg.connect(server_dsn, autocommit=True) as server,
    ):
        while time.monotonic() < deadline:
            cursor = admin.execute("SHOW POOLS")
            columns = [c.name for c in cursor.description or []]
            rows = [dict(zip(columns, row, strict=False)) for row in cursor.fetchall()]
            ours = [row for row in rows if row["database"] == DATABASE]
            clients = sum(row["cl_active"] + row["cl_waiting"] for row in ours)
            servers = sum(row["sv_active"] + row["sv_idle"] + row["sv_used"] for row in ours)
            backends = server.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()[0]
            peak["pgbouncer_clients"] = max(peak["pgbouncer_clients"], clients)
            peak["pgbouncer_server_conns"] = max(peak["pgbouncer_server_conns"], servers)
            peak["postgres_backends"] = max(peak["postgres_backends"], backends)
            time.sleep(0.5)
    return peak


def summary(label: str, run: dict, clients: int) -> dict:
    lookups, publishes = run["latencies"]["lookup"], run["latencies"]["publish"]
    every = lookups + publishes
    return {
        "label": label,
        "clients": clients,
        "connected": run["connected"],
        "operations": len(every),
        "ops_per_s": len(every) / run["elapsed"] if run["elapsed"] else 0.0,
        "lookup_p50_ms": percentile(lookups, 0.5) * 1000,
        "lookup_p99_ms": percentile(lookups, 0.99) * 1000,
        "publish_p50_ms": percentile(publishes, 0.5) * 1000,
        "publish_p99_ms": percentile(publishes, 0.99) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
        "errors": sum(run["errors"].values()),
        "error_kinds": dict(run["errors"].most_common(5)),
        **run["observed"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--pool-size", type=int, default=40, help="PgBouncer default_pool_size")
    parser.add_argument("--max-connections", type=int, default=100)
    parser.add_argument("--publish-share", type=float, default=0.2)
    parser.add_argument(
        "--think", type=float, default=4.0, help="max pause between a client's operations (s)"
    )
    parser.add_argument("--skip-direct", action="store_true", help="no straight-to-server run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    limit = raise_file_limit(4 * args.clients + 1024)
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    tag = uuid.uuid4().hex[:8]
    queue = f"bench-pgbouncer-{tag}"
    server = PrivatePostgres(args.max_connections)
    bouncer = None
    figures = []
    try:
        with console.status(
            f"initdb + start a private PostgreSQL (max_connections={args.max_connections})"
        ):
            server.start()
            from orderq.schema import ensure_database_exists, upgrade_to_head

            direct = server.url(DATABASE)
            ensure_database_exists(direct)
            upgrade_to_head(direct)
            skus = [f"PGB-{tag}-{n}" for n in range(20)]
            dsn = direct.replace("+psycopg", "")
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(
                    "INSERT INTO products (sku, name, price_cents) "
                    "SELECT unnest(%s::text[]), 'bench', 100",
                    (skus,),
                )
        bouncer = PgBouncer(
            "127.0.0.1",
            server.port,
            pool_size=args.pool_size,
            max_client_conn=args.clients + 200,
        ).start()
        console.print(
            f"PostgreSQL 15 on :{server.port} (max_connections {args.max_connections}) · "
            f"PgBouncer {pgbouncer_version()} on :{bouncer.port} (transaction pooling, "
            f"pool {args.pool_size}) · {args.clients} clients in {args.processes} processes · "
            f"open files limit {limit}"
        )
        spec = {
            "url": bouncer.url_for(direct),
            "broker": broker,
            "queue": queue,
            "pooler": "pgbouncer",
            "seconds": args.seconds,
            "skus": skus,
            "tag": tag,
            "publish_share": args.publish_share,
            "think": args.think,
        }
        with console.status(f"{args.clients} clients through PgBouncer, {args.seconds:g}s"):
            run = run_clients(
                spec,
                args.clients,
                args.processes,
                on_running=lambda: observe(bouncer, dsn, args.seconds),
            )
        figures.append(summary("through PgBouncer", run, args.clients))
        if not args.skip_direct:
            with console.status(f"{args.clients} clients straight to PostgreSQL"):
                direct_spec = {**spec, "url": direct, "pooler": "none", "seconds": 5.0}
                figures.append(
                    summary(
                        "straight to PostgreSQL",
                        run_clients(direct_spec, args.clients, args.processes),
                        args.clients,
                    )
                )
    finally:
        if bouncer is not None:
            bouncer.stop()
        server.stop()
        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(broker)
            for key in client.scan_iter(match=f"{queue}*"):
                client.delete(key)
            client.close()

    table = Table("", *(f["label"] for f in figures), title="1,000 clients, one small PostgreSQL")
    rows = [
        ("clients / connected", lambda f: f"{f['clients']:,} / {f['connected']:,}"),
        ("operations", lambda f: f"{f['operations']:,}"),
        ("throughput", lambda f: f"{f['ops_per_s']:,.0f} ops/s"),
        ("lookup p50 / p99", lambda f: f"{f['lookup_p50_ms']:.1f} / {f['lookup_p99_ms']:.1f} ms"),
        (
            "publish p50 / p99",
            lambda f: f"{f['publish_p50_ms']:.1f} / {f['publish_p99_ms']:.1f} ms",
        ),
        ("p99, all operations", lambda f: f"{f['p99_ms']:.1f} ms"),
        ("errors", lambda f: f"{f['errors']:,}"),
        ("peak clients at PgBouncer", lambda f: str(f.get("pgbouncer_clients", "-"))),
        ("peak PgBouncer->server conns", lambda f: str(f.get("pgbouncer_server_conns", "-"))),
        ("peak PostgreSQL backends", lambda f: str(f.get("postgres_backends", "-"))),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(f) for f in figures))
    console.print(table)
    for f in figures:
        for kind, count in f["error_kinds"].items():
            console.print(f"[dim]{f['label']}: {count} x {kind}[/]")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
