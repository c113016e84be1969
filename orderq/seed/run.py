"""Fill a database with a seeded shop and library in one transaction (COPY), then
VACUUM (ANALYZE).

Everything is written in ONE transaction: a failed or interrupted seed leaves nothing
behind. The seeded tables are locked against writers meanwhile (SHARE ROW EXCLUSIVE:
reads go on), so the ids and order numbers the seed hands out cannot collide with a
command running at the same time; ids continue after the existing rows and the
sequences are moved past the seed's. Foreign keys, CHECKs and unique indexes stay on:
the database checks every seeded row like any other.

The same seed, sizes and anchor on an empty database give the same rows.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Engine

from orderq.seed import library as lib
from orderq.seed import shop as shp
from orderq.seed.names import Names
from orderq.seed.plan import SeedPlan
from orderq.seed.writer import copy_rows
from producers.database import autocommit, transaction

TABLES = (
    "products",
    "stock_levels",
    "customers",
    "orders",
    "order_items",
    "stock_movements",
    "command_ledger",
    "members",
    "works",
    "copies",
    "loans",
)
SEARCH_GIN_INDEXES = (
    "ix_works_search_vector",
    "ix_works_search_text_trgm",
    "ix_members_name_trgm",
    "ix_customers_name_trgm",
    "ix_products_name_trgm",
)
#: tables given explicit ids: their identity sequences move past the seeded ones
WITH_IDS = ("products", "orders", "members", "works", "copies")


class AlreadySeeded(RuntimeError):
    """This seed's rows are already in the database."""


class Reporter:
    """Progress of a seed run: `begin(label, total)`, then `advance(label, n)`."""

    def begin(self, label: str, total: int) -> None:  # pragma: no cover - interface
        pass

    def advance(self, label: str, count: int) -> None:  # pragma: no cover - interface
        pass


@dataclass
class SeedReport:
    plan: SeedPlan
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, table: str, count: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + count


def _next_id(connection: psycopg.Connection[Any], table: str) -> int:
    (found,) = connection.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()  # type: ignore[misc]
    return int(found)


def _next_order_number(connection: psycopg.Connection[Any]) -> int:
    (last, called) = connection.execute(
        "SELECT last_value, is_called FROM order_number_seq"
    ).fetchone()  # type: ignore[misc]
    return int(last) + 1 if called else int(last)


def seed(
    engine: Engine,
    plan: SeedPlan,
    reporter: Reporter | None = None,
    phone_region: str | None = None,
) -> SeedReport:
    """Write `plan`'s rows (see orderq/seed/shop.py and library.py for what they are)."""
    reporter = reporter or Reporter()
    report = SeedReport(plan)
    started = time.monotonic()
    rng = random.Random(plan.seed)
    names = Names(rng)
    with transaction(engine) as connection:
        connection.execute("SET LOCAL statement_timeout = 0")
        connection.execute("SET LOCAL lock_timeout = '30s'")
        connection.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
        if connection.execute(
            "SELECT 1 FROM products WHERE sku LIKE %s UNION ALL "
            "SELECT 1 FROM members WHERE member_number LIKE %s LIMIT 1",
            (f"{plan.tag}-%", f"{plan.tag}-%"),
        ).fetchone():
            raise AlreadySeeded(
                f"seed {plan.seed} is already in this database (codes {plan.tag}-…): "
                "use another --seed, or a fresh database"
            )
        # Bulk loading into GIN indexes without a pending list (fastupdate off, see
        # migration 0011) costs minutes: queue the entries while loading, turn it off
        # again before commit; the VACUUM below merges the queued entries.
        for index in SEARCH_GIN_INDEXES:
            connection.execute(f"ALTER INDEX {index} SET (fastupdate = on)")
        shop = shp.Shop(
            plan,
            rng,
            names,
            first_product_id=_next_id(connection, "products"),
            first_order_id=_next_id(connection, "orders"),
            first_order_number=_next_order_number(connection),
            phone_region=phone_region,
        )
        _seed_shop(connection, shop, reporter, report)
        library = lib.Library(
            plan,
            rng,
            names,
            first_member_id=_next_id(connection, "members"),
            first_work_id=_next_id(connection, "works"),
            first_copy_id=_next_id(connection, "copies"),
            phone_region=phone_region,
        )
        _seed_library(connection, library, reporter, report)
        for table in WITH_IDS:
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        if plan.orders:
            connection.execute(
                "SELECT setval('order_number_seq', %s)",
                (shop.first_order_number + plan.orders - 1,),
            )
        for index in SEARCH_GIN_INDEXES:
            connection.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
    reporter.begin("analyze", len(TABLES))
    with autocommit(engine) as connection:
        connection.execute("SET statement_timeout = 0")
        for table in TABLES:
            # VACUUM too: sets the visibility map (index-only scans) and merges any
            # pending GIN entries, as autovacuum would after a while
            connection.execute(f"VACUUM (ANALYZE) {table}")
            reporter.advance("analyze", 1)
        connection.execute("RESET statement_timeout")
    report.seconds = time.monotonic() - started
    return report


def _copy(connection, table, columns, rows, reporter, report, label) -> None:  # type: ignore[no-untyped-def]
    report.add(table, copy_rows(connection, table, columns, rows, reporter.advance, label))


def _seed_shop(connection, shop: shp.Shop, reporter: Reporter, report: SeedReport) -> None:  # type: ignore[no-untyped-def]
    plan = shop.plan
    reporter.begin("products", plan.products)
    _copy(
        connection, "products", shp.PRODUCT_COLUMNS, shop.products(), reporter, report, "products"
    )
    reporter.begin("customers", plan.customers)
    _copy(
        connection,
        "customers",
        shp.CUSTOMER_COLUMNS,
        shop.customers(),
        reporter,
        report,
        "customers",
    )
    reporter.begin("orders", plan.orders)
    for first in range(0, plan.orders, plan.chunk):
        rows = shop.order_chunk(first, min(plan.chunk, plan.orders - first))
        quiet: Callable[[str, int], None] = lambda label, n: None  # noqa: E731
        report.add(
            "orders",
            copy_rows(
                connection, "orders", shp.ORDER_COLUMNS, rows["orders"], reporter.advance, "orders"
            ),
        )
        report.add(
            "order_items",
            copy_rows(connection, "order_items", shp.ITEM_COLUMNS, rows["items"], quiet, ""),
        )
        report.add(
            "stock_movements",
            copy_rows(
                connection, "stock_movements", shp.MOVEMENT_COLUMNS, rows["movements"], quiet, ""
            ),
        )
        report.add(
            "command_ledger",
            copy_rows(connection, "command_ledger", shp.LEDGER_COLUMNS, rows["ledger"], quiet, ""),
        )
    movements, levels = shop.restocks_and_levels()
    reporter.begin("stock", 2 * plan.products)
    _copy(connection, "stock_movements", shp.MOVEMENT_COLUMNS, movements, reporter, report, "stock")
    _copy(connection, "stock_levels", shp.STOCK_COLUMNS, levels, reporter, report, "stock")


def _seed_library(connection, library: lib.Library, reporter: Reporter, report: SeedReport) -> None:  # type: ignore[no-untyped-def]
    plan = library.plan
    reporter.begin("members", plan.members)
    _copy(connection, "members", lib.MEMBER_COLUMNS, library.members(), reporter, report, "members")
    reporter.begin("works", plan.works)
    _copy(connection, "works", lib.WORK_COLUMNS, library.works(), reporter, report, "works")
    reporter.begin("loans", plan.loans)
    copies_per_chunk = max(1, plan.chunk * plan.copies // max(plan.loans, 1))
    loans_written = 0
    for first in range(0, plan.copies, copies_per_chunk):
        copies, loans = library.copies_and_loans(
            first, min(copies_per_chunk, plan.copies - first), loans_written
        )
        quiet: Callable[[str, int], None] = lambda label, n: None  # noqa: E731
        report.add("copies", copy_rows(connection, "copies", lib.COPY_COLUMNS, copies, quiet, ""))
        report.add(
            "loans",
            copy_rows(connection, "loans", lib.LOAN_COLUMNS, loans, reporter.advance, "loans"),
        )
        loans_written += len(loans)
