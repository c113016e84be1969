"""Read-side order queries (orderq/read/orders.py): keyset pages cover everything once;
the index serves them; a cursor is signed and scoped to its status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from orderq.read import InvalidCursor, InvalidQuery, Reader
from orderq.read.orders import FIRST_PAGE_ALL_STATUSES, NEXT_PAGE_ALL_STATUSES
from producers.commands import CancelOrder
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.plans import index_names, plan_nodes


@pytest.fixture
def reader(engine) -> Reader:
    return Reader(engine, cursor_secret="order-queries-test")


def test_find_order_returns_its_lines(runner, reader):
    sku = new_product(runner, stock=3, price_cents=700)
    command = order_for(sku, qty=2)
    number = run(runner, command).result["order_number"]

    order = reader.order(number.lower())

    assert order["status"] == "placed"
    assert order["idempotency_key"] == command.key
    assert reader.order("ORD-999999999") is None
    assert order["lines"] == [
        {"sku": sku, "qty": 2, "unit_price_cents": 700, "line_total_cents": 1400}
    ]


def test_keyset_pages_cover_every_order_once_newest_first(runner, engine, reader):
    sku = new_product(runner, stock=20)
    for _ in range(7):
        number = run(runner, order_for(sku)).result["order_number"]
        run(runner, CancelOrder(key=unique("c"), order_number=number))
    with engine.connect() as connection:
        expected = (
            connection.execute(
                text(
                    "SELECT order_number FROM orders WHERE status = 'cancelled' "
                    "ORDER BY created_at DESC, id DESC"
                )
            )
            .scalars()
            .all()
        )

    seen, cursor = [], None
    while True:
        page = reader.orders("cancelled", limit=3, cursor=cursor)
        seen += [order["order_number"] for order in page.results]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == expected
    assert len(seen) >= 7


def test_keyset_pages_across_every_status_cover_each_order_once_newest_first(runner, reader):
    sku = new_product(runner, stock=20)
    mine = []
    for n in range(6):
        number = run(runner, order_for(sku)).result["order_number"]
        if n % 2:
            run(runner, CancelOrder(key=unique("c"), order_number=number))
        mine.append(number)

    seen, cursor = [], None
    while True:
        page = reader.orders(None, limit=100, cursor=cursor)
        seen += [
            (datetime.fromisoformat(order["created_at"]), order["order_number"])
            for order in page.results
        ]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    numbers = [number for _, number in seen]
    assert len(numbers) == len(set(numbers))  # no order twice across pages
    assert [created for created, _ in seen] == sorted((c for c, _ in seen), reverse=True)
    assert set(mine) <= set(numbers)  # placed and cancelled ones alike
    first = reader.orders(None, limit=3)
    assert [o["order_number"] for o in first.results] == numbers[:3]


def test_a_cursor_continues_only_its_own_listing_and_refuses_tampering(runner, reader):
    sku = new_product(runner, stock=5)
    for _ in range(3):
        run(runner, order_for(sku))
    cursor = reader.orders("placed", limit=1).next_cursor
    assert cursor is not None
    payload, signature = cursor.split(".")
    tampered = f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"

    with pytest.raises(InvalidCursor, match="altered"):
        reader.orders("placed", limit=1, cursor=tampered)
    with pytest.raises(InvalidCursor, match="other filters"):
        reader.orders("paid", limit=1, cursor=cursor)  # the same listing, another status
    with pytest.raises(InvalidCursor, match="other filters"):
        reader.orders(None, limit=1, cursor=cursor)
    with pytest.raises(InvalidCursor, match="another secret"):
        Reader(reader.engine, cursor_secret="another").orders("placed", 1, cursor)
    with pytest.raises(InvalidQuery, match="status 'lost'"):
        reader.orders("lost")
    assert reader.orders("placed", limit=1, cursor=cursor).results


def test_report_counts_and_sums_per_status(runner, reader):
    now = datetime.now(UTC)
    before = {r["status"]: r for r in reader.order_totals(now - timedelta(1), now)}
    assert set(before) == {"placed", "paid", "shipped", "cancelled"}
    sku = new_product(runner, stock=5, price_cents=300)
    run(runner, order_for(sku, qty=2))

    after = reader.order_totals(now - timedelta(1), datetime.now(UTC), ["placed"])

    assert after[0]["orders"] == before["placed"]["orders"] + 1
    assert after[0]["total_cents"] == before["placed"]["total_cents"] + 600


def test_page_and_report_use_the_status_created_at_index(engine):
    # 30k orders in a transaction that is rolled back: the plan is real, the rows vanish.
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(
            text(
                "INSERT INTO orders"
                " (idempotency_key, customer_ref, status, total_cents, created_at)"
                " SELECT 'plan-' || n, 'c',"
                " (ARRAY['placed','paid','shipped','cancelled'])[n % 4 + 1],"
                " 100, now() - n * interval '1 minute' FROM generate_series(1, 30000) n"
            )
        )
        connection.execute(text("ANALYZE orders"))

        page = index_names(
            connection,
            "SELECT id FROM orders WHERE status = 'paid' AND (created_at, id) < (now(), 0) "
            "ORDER BY created_at DESC, id DESC LIMIT 20",
        )
        report = index_names(
            connection,
            "SELECT count(*), sum(total_cents) FROM orders WHERE status = 'paid' "
            "AND created_at >= now() - interval '1 day' AND created_at < now()",
        )
        transaction.rollback()

    assert page == {"ix_orders_status_created_at"}
    assert report == {"ix_orders_status_created_at"}


def test_page_across_every_status_reads_the_status_index_not_the_table(engine):
    """Listing without a status: one short range of ix_orders_status_created_at per
    status, merged — no sequential scan and no sort of the whole table, at any depth."""
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(
            text(
                "INSERT INTO orders"
                " (idempotency_key, customer_ref, status, total_cents, created_at)"
                " SELECT 'plan-all-' || n, 'c',"
                " (ARRAY['placed','paid','shipped','cancelled'])[n % 4 + 1],"
                " 100, now() - n * interval '1 minute' FROM generate_series(1, 100000) n"
            )
        )
        connection.execute(text("ANALYZE orders"))
        statuses = ["placed", "paid", "shipped", "cancelled"]
        plans = [
            plan_nodes(connection, sql, params)
            for sql, params in (
                (FIRST_PAGE_ALL_STATUSES, {"statuses": statuses, "limit": 20}),
                (
                    NEXT_PAGE_ALL_STATUSES,
                    {
                        "statuses": statuses,
                        "limit": 20,
                        "after_created_at": datetime.now(UTC) - timedelta(days=50),
                        "after_id": 0,
                    },
                ),
            )
        ]
        transaction.rollback()

    for nodes in plans:
        scans = [n for n in nodes if n.get("Relation Name") == "orders"]
        assert [n["Node Type"] for n in scans] == ["Index Scan"]
        assert scans[0]["Index Name"] == "ix_orders_status_created_at"
        # each status's range stops after one page: the sort sees at most 4 pages
        limits = [n for n in nodes if n["Node Type"] == "Limit"]
        assert len(limits) == 2
