"""The read side at 10^6 orders / 10^6 loans / 10^5 members / 10^5 works: how long every
read query takes, the first keyset page against the deepest, and how fast commands run
on that database next to an empty one. Prints figures (and --json); asserts nothing.

    python scripts/bench_reads.py                       # seeds orderq_bench_reads if empty
    python scripts/bench_reads.py --repeat 300 --json reads.json
    python scripts/bench_reads.py --database-url postgresql+psycopg://…/mydb --no-seed

The big database is seeded once (`orderq seed`, the default sizes) and kept for later
runs; the empty one (`<name>_empty`) is re-created every run. Read queries run on one
connection after a warm-up, each `--repeat` times over parameters drawn from the data
(the same draw for the same --seed). Command throughput: the worker's in-process runner
(no broker) on `--threads` threads, place_order then checkout+return, on both databases.
Targets from the product brief: every read p95 < 20 ms, deepest page <= 1.5 x the first,
commands >= 0.8 x their empty-database throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from orderq.read import Reader  # noqa: E402
from orderq.schema import ensure_database_exists, upgrade_to_head  # noqa: E402
from orderq.seed import Reporter, SeedPlan, seed  # noqa: E402
from producers.commands import (  # noqa: E402
    AddCopy,
    AddWork,
    CheckoutCopy,
    PlaceOrder,
    RegisterMember,
    RestockProduct,
    ReturnCopy,
    UpsertProduct,
)
from producers.database import normalize_database_url  # noqa: E402
from tests.support.database import drop_database, recreate_empty_database  # noqa: E402
from worker.adapters.orm import start_mappers  # noqa: E402
from worker.service.runner import CommandRunner, RetryLater  # noqa: E402
from worker.settings import WorkerSettings  # noqa: E402

console = Console()
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/orderq_bench_reads"
P95_TARGET_MS = 20.0
DEEP_RATIO_TARGET = 1.5
COMMAND_RATIO_TARGET = 0.8


# -- databases ----------------------------------------------------------------------------


class Bars(Reporter):
    def begin(self, label: str, total: int) -> None:
        console.print(f"  seeding {label}: {total:,}")


def big_database(url: str, plan: SeedPlan, may_seed: bool) -> Engine:
    ensure_database_exists(url)
    upgrade_to_head(url)
    engine = create_engine(url, pool_size=8, max_overflow=8)
    with engine.connect() as connection:
        seeded = connection.execute(
            text("SELECT count(*) FROM orders WHERE idempotency_key LIKE :p"),
            {"p": f"seed{plan.seed}-order-%"},
        ).scalar()
    if not seeded:
        if not may_seed:
            raise SystemExit(f"{url} holds no seed {plan.seed} rows and --no-seed was given")
        console.print(f"[bold]seeding {make_url(url).database}[/] (once; kept for later runs)")
        report = seed(engine, plan, Bars())
        console.print(f"  {sum(report.rows.values()):,} rows in {report.seconds:.0f} s")
    return engine


def empty_database(url: str) -> Engine:
    recreate_empty_database(url)
    upgrade_to_head(url)
    return create_engine(url, pool_size=8, max_overflow=8)


# -- timing -------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _summary(durations: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(durations), 2),
        "p95_ms": round(percentile(durations, 0.95), 2),
        "p99_ms": round(percentile(durations, 0.99), 2),
        "max_ms": round(max(durations), 2),
    }


def timed(calls: list[Callable[[], Any]], repeat: int, split: bool = False) -> Any:
    """Call `calls` round robin `repeat` times after a warm-up; the percentiles of all
    calls, or with `split` one summary per call."""
    for call in calls[: min(len(calls), 20)]:  # warm-up: caches, prepared statements
        call()
    durations: list[list[float]] = [[] for _ in calls]
    for n in range(repeat):
        started = time.perf_counter()
        calls[n % len(calls)]()
        durations[n % len(calls)].append((time.perf_counter() - started) * 1000)
    if split:
        return [_summary(d) for d in durations]
    return _summary([d for each in durations for d in each])


# -- the read queries, with parameters drawn from the seeded rows --------------------------


def typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    cut = rng.randrange(1, len(word) - 1)
    return word[:cut] + word[cut + 1 :]


def samples(engine: Engine, rng: random.Random, plan: SeedPlan) -> dict[str, list[Any]]:
    """Parameters drawn from the seeded rows; the same draw for the same seed."""

    def draw(table: str, column: str, key: str, like: str, limit: int = 100) -> list[Any]:
        sql = (
            f"SELECT {column} FROM {table} WHERE {key} LIKE :like AND {column} IS NOT NULL "
            f"ORDER BY md5({key} || :salt) LIMIT :limit"
        )
        with engine.connect() as connection:
            rows = connection.execute(
                text(sql), {"like": like, "salt": str(plan.seed), "limit": limit}
            )
            return [row[0] for row in rows]

    tag = plan.tag
    titles = draw("works", "title", "work_code", f"{tag}-W%", 200)
    authors = draw("works", "authors[1]", "work_code", f"{tag}-W%")
    members = draw("members", "member_number", "member_number", f"{tag}-M%", 200)
    contacts = {
        kind: draw("members", kind, "member_number", f"{tag}-M%")
        for kind in ("name", "email", "phone")
    }
    customer_contacts = {
        kind: draw("customers", kind, "customer_ref", f"seed{plan.seed}-%")
        for kind in ("customer_ref", "name", "email", "phone")
    }
    skus = draw("products", "sku", "sku", f"{tag}-P%", 200)
    product_names = draw("products", "name", "sku", f"{tag}-P%")
    work_queries = ["harry poter", "bronte", "wuthering heights"]
    for title in titles[:100]:
        words = [w for w in title.split() if len(w) > 3]
        if len(words) >= 2:
            work_queries.append(f"{typo(rng, words[0].lower())} {words[1].lower()}")
    work_queries += [a.split()[-1].lower() for a in authors[:50]]
    return {
        "work_queries": work_queries,
        "member_names": [typo(rng, n) for n in contacts["name"]],
        "member_emails": [e.split("@")[0] + "@" for e in contacts["email"]],
        "member_phones": contacts["phone"],
        "customer_names": [typo(rng, n) for n in customer_contacts["name"]],
        "customer_emails": customer_contacts["email"],
        "customer_phones": customer_contacts["phone"],
        "customer_refs": customer_contacts["customer_ref"],
        "members": members,
        "sku_prefixes": [s[: len(s) - 2] for s in skus[:100]],
        "product_names": [typo(rng, n) for n in product_names],
        "skus": skus,
    }


def read_queries(reader: Reader, s: dict[str, list[Any]], anchor: datetime, rng: random.Random):
    def each(values: list[Any], call: Callable[[Any], Any]) -> list[Callable[[], Any]]:
        return [lambda v=v: call(v) for v in values]

    days = [anchor - timedelta(days=rng.randrange(2, 360)) for _ in range(50)]
    return {
        "search works (title/author, typos)": each(s["work_queries"], reader.search_works),
        "search members by name": each(s["member_names"], reader.search_members),
        "search members by e-mail prefix": each(s["member_emails"], reader.search_members),
        "search members by phone": each(s["member_phones"], reader.search_members),
        "search customers by name": each(s["customer_names"], reader.search_customers),
        "search customers by e-mail": each(s["customer_emails"], reader.search_customers),
        "search customers by phone": each(s["customer_phones"], reader.search_customers),
        "search products by SKU prefix": each(s["sku_prefixes"], reader.search_products),
        "search products by name": each(s["product_names"], reader.search_products),
        "orders of a customer": each(s["customer_refs"], reader.orders_of_customer),
        "loans of a member (active)": each(
            s["members"], lambda m: reader.member_loans(m, "active")
        ),
        "loans of a member (history)": each(
            s["members"], lambda m: reader.member_loans(m, "history")
        ),
        "stock movements of a product": each(s["skus"], reader.product_movements),
        "ledger: rejected in a day": each(
            days, lambda d: reader.ledger("rejected", d, d + timedelta(days=1))
        ),
        "ledger: succeeded in a day": each(
            days, lambda d: reader.ledger("succeeded", d, d + timedelta(days=1))
        ),
        "hot report: shipped > 100.00 in 30 days": each(
            days,
            lambda d: reader.orders_over_total("shipped", d - timedelta(days=30), d, 10_000),
        ),
    }


def deep_pages(reader: Reader, engine: Engine, s: dict[str, list[Any]], anchor: datetime):
    """(name, fetch(cursor)) for listings long enough to have deep pages."""
    with engine.connect() as connection:
        busiest = connection.execute(
            text(
                "SELECT p.sku FROM products p JOIN stock_movements m ON m.product_id = p.id "
                "WHERE p.sku = ANY(:skus) GROUP BY p.sku ORDER BY count(*) DESC LIMIT 1"
            ),
            {"skus": s["skus"]},
        ).scalar()
    week = (anchor - timedelta(days=8), anchor - timedelta(days=1))
    quarter = (anchor - timedelta(days=90), anchor)
    return {
        "stock movements of the busiest product": lambda c: reader.product_movements(
            busiest, 20, c
        ),
        "ledger: succeeded in a week": lambda c: reader.ledger("succeeded", *week, 20, c),
        "hot report: shipped > 100.00 in 90 days": lambda c: reader.orders_over_total(
            "shipped", *quarter, 10_000, 20, c
        ),
        "orders in a status (orders list)": lambda c: reader.orders("shipped", 20, c),
    }


def first_vs_deepest(
    fetch: Callable[[str | None], Any], max_pages: int, repeat: int
) -> dict[str, Any]:
    cursor, deepest, pages = None, None, 0
    while pages < max_pages:
        page = fetch(cursor)
        pages += 1
        if page.next_cursor is None:
            break
        deepest = cursor = page.next_cursor
    # alternate the two, so a drift of the machine's load hits both alike
    both = timed([lambda: fetch(None), lambda: fetch(deepest)], 2 * repeat, split=True)
    first, deep = both
    return {
        "pages_walked": pages,
        "first_p50_ms": first["p50_ms"],
        "deepest_p50_ms": deep["p50_ms"],
        "first_p95_ms": first["p95_ms"],
        "deepest_p95_ms": deep["p95_ms"],
        "ratio_p50": round(deep["p50_ms"] / first["p50_ms"], 2) if first["p50_ms"] else None,
    }


# -- commands on the big database next to an empty one --------------------------------------


def run_ok(runner: CommandRunner, command: Any) -> None:
    outcome = runner.run(command.message(), command.type)
    if isinstance(outcome, RetryLater) or outcome.status != "succeeded":
        raise RuntimeError(f"{command.type} {command.key}: {outcome}")


def command_rates(engine: Engine, label: str, count: int, threads: int) -> dict[str, float]:
    settings = WorkerSettings(database_url=engine.url.render_as_string(hide_password=False))
    start_mappers()
    runner = CommandRunner(settings, engine, sessionmaker(bind=engine, expire_on_commit=False))
    stamp = f"{label}-{int(time.time())}"
    skus = [f"BENCH-{stamp}-{i}".upper() for i in range(100)]
    for sku in skus:
        run_ok(runner, UpsertProduct(key=f"u-{sku}", sku=sku, name="bench mug", price_cents=500))
        run_ok(runner, RestockProduct(key=f"r-{sku}", sku=sku, qty=100_000))
    code = f"BW-{stamp}".upper()
    run_ok(runner, AddWork(key=f"w-{code}", work=code, title="Bench Book"))
    members = [f"BM-{stamp}-{t}".upper() for t in range(threads)]
    copies = [[f"BC-{stamp}-{t}-{i}".upper() for i in range(4)] for t in range(threads)]
    for t, member in enumerate(members):
        run_ok(runner, RegisterMember(key=f"m-{member}", member=member, name="Bench Reader"))
        for barcode in copies[t]:
            run_ok(runner, AddCopy(key=f"c-{barcode}", work=code, barcode=barcode))

    def rate(make: Callable[[int, int], list[Any]]) -> float:
        per_thread = count // threads
        work = [make(t, per_thread) for t in range(threads)]
        for t in range(threads):  # warm-up
            for command in work[t][:10]:
                run_ok(runner, command)
        errors: list[BaseException] = []
        barrier = threading.Barrier(threads + 1)

        def go(t: int) -> None:
            barrier.wait()
            try:
                for command in work[t][10:]:
                    run_ok(runner, command)
            except BaseException as error:
                errors.append(error)

        pool = [threading.Thread(target=go, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise errors[0]
        return round(sum(len(w) - 10 for w in work) / elapsed, 1)

    def orders(t: int, n: int) -> list[Any]:
        rng = random.Random(t)
        return [
            PlaceOrder(
                key=f"o-{stamp}-{t}-{i}",
                customer_ref=f"bench-{t}-{i % 50}",
                lines=[{"sku": sku, "qty": 1} for sku in sorted(rng.sample(skus, 2))],
            )
            for i in range(n)
        ]

    def loans(t: int, n: int) -> list[Any]:
        commands: list[Any] = []
        for i in range(n // 2):
            barcode = copies[t][i % 4]
            commands.append(
                CheckoutCopy(key=f"co-{stamp}-{t}-{i}", member=members[t], barcode=barcode)
            )
            commands.append(ReturnCopy(key=f"rt-{stamp}-{t}-{i}", barcode=barcode))
        return commands

    return {"place_order_per_s": rate(orders), "checkout_return_per_s": rate(loans)}


def compare_commands(engine: Engine, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Rounds alternating an empty database and the big one (the machine's load drifts);
    the median of each side's rounds, and their ratio."""
    empty_url = (
        make_url(url)
        .set(database=f"{make_url(url).database}_empty")
        .render_as_string(hide_password=False)
    )
    rounds: dict[str, list[dict[str, float]]] = {"empty": [], "big": []}
    empty = empty_database(empty_url)
    try:
        for n in range(args.rounds):
            rounds["empty"].append(command_rates(empty, f"empty{n}", args.commands, args.threads))
            rounds["big"].append(command_rates(engine, f"big{n}", args.commands, args.threads))
    finally:
        empty.dispose()
        drop_database(empty_url)
    result: dict[str, Any] = {"rounds": rounds}
    table = Table(
        "command",
        "empty db /s",
        "big db /s",
        "big/empty",
        ">= 0.8",
        title=f"commands (in-process runner, {args.threads} threads, "
        f"median of {args.rounds} rounds)",
    )
    for key in rounds["empty"][0]:
        on_empty = statistics.median(r[key] for r in rounds["empty"])
        on_big = statistics.median(r[key] for r in rounds["big"])
        ratio = round(on_big / on_empty, 2)
        result[key] = {"empty": on_empty, "big": on_big, "ratio": ratio}
        met = "met" if ratio >= COMMAND_RATIO_TARGET else "[red]not met[/]"
        table.add_row(key, str(on_empty), str(on_big), str(ratio), met)
    console.print(table)
    return result


# -- output -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="seed sizes x this (0.02 for a smoke run)"
    )
    parser.add_argument("--no-seed", action="store_true", help="refuse to seed a database")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per read query")
    parser.add_argument("--max-pages", type=int, default=500, help="deepest page walked to")
    parser.add_argument("--commands", type=int, default=2000, help="commands per throughput run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="empty/big command rounds")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--skip-commands", action="store_true")
    args = parser.parse_args()

    url = normalize_database_url(args.database_url)
    base = SeedPlan(seed=args.seed)
    plan = SeedPlan(
        seed=args.seed,
        **{
            size: max(int(getattr(base, size) * args.scale), 1)
            for size in ("orders", "loans", "members", "works", "products", "customers")
        },
    )
    engine = big_database(url, plan, not args.no_seed)
    with engine.connect() as connection:
        sizes = dict(
            connection.execute(
                text("SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY(:t)"),
                {
                    "t": [
                        "orders",
                        "order_items",
                        "stock_movements",
                        "loans",
                        "members",
                        "works",
                        "customers",
                        "command_ledger",
                    ]
                },
            ).all()
        )
        anchor = connection.execute(
            text("SELECT max(created_at) FROM orders WHERE idempotency_key LIKE :p"),
            {"p": f"seed{plan.seed}-order-%"},
        ).scalar() or datetime.now(UTC)
    rng = random.Random(args.seed)
    reader = Reader(engine)
    s = samples(engine, rng, plan)
    figures: dict[str, Any] = {
        "database": make_url(url).database,
        "rows": sizes,
        "reads": {},
        "deep_pages": {},
    }

    table = Table("read query", "p50", "p95", "p99", "p95 < 20 ms", title="read queries")
    for name, calls in read_queries(reader, s, anchor, rng).items():
        result = timed(calls, args.repeat)
        figures["reads"][name] = result
        met = "met" if result["p95_ms"] < P95_TARGET_MS else "[red]not met[/]"
        table.add_row(
            name, f"{result['p50_ms']} ms", f"{result['p95_ms']} ms", f"{result['p99_ms']} ms", met
        )
    console.print(table)

    pages = Table(
        "listing",
        "pages",
        "first p50",
        "deepest p50",
        "deepest/first",
        "<= 1.5",
        title="keyset pages",
    )
    for name, fetch in deep_pages(reader, engine, s, anchor).items():
        result = first_vs_deepest(fetch, args.max_pages, max(args.repeat // 4, 20))
        figures["deep_pages"][name] = result
        met = (
            "met"
            if result["ratio_p50"] is not None and result["ratio_p50"] <= DEEP_RATIO_TARGET
            else "[red]not met[/]"
        )
        pages.add_row(
            name,
            str(result["pages_walked"]),
            f"{result['first_p50_ms']} ms",
            f"{result['deepest_p50_ms']} ms",
            str(result["ratio_p50"]),
            met,
        )
    console.print(pages)

    if not args.skip_commands:
        figures["commands"] = compare_commands(engine, url, args)
    engine.dispose()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
