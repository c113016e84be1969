"""Read-side order queries: keyset pages cover everything once; the index serves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from orderq.admin.order_queries import find_order, page_orders, status_report
from producers.commands import CancelOrder
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.plans import index_names


def test_find_order_returns_its_lines(runner, engine):
    sku = new_product(runner, stock=3, price_cents=700)
    number = run(runner, order_for(sku, qty=2)).result["order_number"]

    order = find_order(engine, number)

    assert order["status"] == "placed"
    assert order["lines"] == [
        {"sku": sku, "qty": 2, "unit_price_cents": 700, "line_total_cents": 1400}
    ]


def test_keyset_pages_cover_every_order_once_newest_first(runner, engine):
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
        page = page_orders(engine, "cancelled", limit=3, cursor=cursor)
        seen += [order["order_number"] for order in page.orders]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == expected
    assert len(seen) >= 7


def test_report_counts_and_sums_per_status(runner, engine):
    now = datetime.now(UTC)
    before = {r["status"]: r for r in status_report(engine, ["placed"], now - timedelta(1), now)}
    sku = new_product(runner, stock=5, price_cents=300)
    run(runner, order_for(sku, qty=2))

    after = status_report(engine, ["placed"], now - timedelta(1), datetime.now(UTC))

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
