"""`orderq seed`: consistent with every rule the database and the domain keep, and the
same rows for the same seed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from orderq.read.cursors import CursorCodec
from orderq.read.works import search_works
from orderq.seed import AlreadySeeded, SeedPlan, seed
from tests.support.database import drop_database as drop
from tests.support.database import prepare_database, recreate_empty_database
from tests.support.environment import TEST_DATABASE_URL

PLAN = SeedPlan(
    seed=5,
    orders=6_000,
    loans=5_000,
    members=800,
    works=900,
    products=150,
    customers=700,
    anchor=datetime(2026, 11, 1, tzinfo=UTC),
    chunk=1_000,
)


def scratch(suffix: str) -> str:
    url = make_url(TEST_DATABASE_URL)
    return url.set(database=f"{url.database}_{suffix}").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def seeded() -> Iterator[Engine]:
    url = scratch("seed")
    recreate_empty_database(url)
    prepare_database(url)
    engine = create_engine(url)
    seed(engine, PLAN)
    yield engine
    engine.dispose()
    drop(url)


def scalar(engine: Engine, sql: str):
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


INVARIANTS = {
    "stock equals the sum of its movements": """
        SELECT count(*) FROM stock_levels s
        JOIN (SELECT product_id, sum(on_hand_delta) AS on_hand, sum(reserved_delta) AS reserved
              FROM stock_movements GROUP BY product_id) m USING (product_id)
        WHERE (s.on_hand, s.reserved) <> (m.on_hand, m.reserved)""",
    "a product without stock row or movements": """
        SELECT count(*) FROM products p
        WHERE NOT EXISTS (SELECT 1 FROM stock_levels s WHERE s.product_id = p.id)""",
    "order total differs from its items": """
        SELECT count(*) FROM orders o
        JOIN (SELECT order_id, sum(line_total_cents) AS total FROM order_items GROUP BY order_id) i
          ON i.order_id = o.id
        WHERE o.total_cents <> i.total""",
    "an order without items": """
        SELECT count(*) FROM orders o
        WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)""",
    "reserved units differ from the open orders' lines": """
        SELECT count(*) FROM stock_levels s
        LEFT JOIN (SELECT i.product_id, sum(i.qty) AS open FROM order_items i
                   JOIN orders o ON o.id = i.order_id WHERE o.status IN ('placed', 'paid')
                   GROUP BY i.product_id) x USING (product_id)
        WHERE s.reserved <> coalesce(x.open, 0)""",
    "copy status disagrees with its loans": """
        SELECT count(*) FROM copies c
        WHERE (c.status = 'on_loan') <> EXISTS (
            SELECT 1 FROM loans l WHERE l.copy_id = c.id AND l.returned_at IS NULL)""",
    "a member over the loan limit": """
        SELECT count(*) FROM members m
        WHERE (SELECT count(*) FROM loans l WHERE l.member_id = m.id AND l.returned_at IS NULL)
              > m.loan_limit""",
    "overlapping loans of one copy": """
        SELECT count(*) FROM loans a JOIN loans b
          ON a.copy_id = b.copy_id AND a.id < b.id
         AND a.checked_out_at < coalesce(b.returned_at, 'infinity')
         AND b.checked_out_at < coalesce(a.returned_at, 'infinity')""",
    "an order without its place_order outcome": """
        SELECT count(*) FROM orders o
        WHERE NOT EXISTS (
            SELECT 1 FROM command_ledger l
            WHERE l.idempotency_key = o.idempotency_key AND l.status = 'succeeded')""",
}


@pytest.mark.parametrize("rule", list(INVARIANTS))
def test_seeded_rows_keep_the_rules(seeded, rule):
    assert scalar(seeded, INVARIANTS[rule]) == 0


def test_row_counts_follow_the_plan(seeded):
    counts = {
        table: scalar(seeded, f"SELECT count(*) FROM {table}")
        for table in ("orders", "loans", "members", "works", "products", "customers")
    }
    assert counts == {
        "orders": PLAN.orders,
        "loans": PLAN.loans,
        "members": PLAN.members,
        "works": PLAN.works,
        "products": PLAN.products,
        "customers": PLAN.customers,
    }
    assert scalar(seeded, "SELECT count(*) FROM copies") == PLAN.copies
    assert scalar(seeded, "SELECT count(*) FROM works WHERE authors::text ~ '[À-ž]'") > 0


def test_new_commands_continue_after_the_seeded_ids_and_numbers(seeded):
    with seeded.begin() as connection:
        number = connection.execute(
            text(
                "INSERT INTO orders (idempotency_key, customer_ref, status, total_cents) "
                "VALUES ('after-seed', 'c', 'placed', 0) RETURNING order_number"
            )
        ).scalar()
    assert number == f"ORD-{PLAN.orders + 1:06d}"


def test_the_search_examples_hold_on_seeded_data(seeded):
    with seeded.connect() as connection:
        stone = search_works(connection, CursorCodec(), "harry poter", 5, None).results
        bronte = search_works(connection, CursorCodec(), "bronte", 10, None).results
    assert stone[0]["title"] == "Harry Potter and the Philosopher's Stone"
    assert any("Emily Brontë" in r["authors"] for r in bronte)


def test_the_same_seed_twice_is_refused_and_writes_nothing(seeded):
    before = scalar(seeded, "SELECT count(*) FROM orders")
    with pytest.raises(AlreadySeeded):
        seed(seeded, PLAN)
    assert scalar(seeded, "SELECT count(*) FROM orders") == before


FINGERPRINT = """
    SELECT md5(string_agg(row, '|' ORDER BY row)) FROM (
        SELECT concat_ws(',', order_number, customer_ref, status, total_cents, created_at)
        FROM orders WHERE idempotency_key LIKE 'seed%'
        UNION ALL SELECT concat_ws(',', sku, name, price_cents) FROM products
        UNION ALL SELECT concat_ws(',', member_number, name, email, phone_digits) FROM members
        UNION ALL SELECT concat_ws(',', c.barcode, l.idempotency_key, l.member_id, l.checked_out_at)
                  FROM loans l JOIN copies c ON c.id = l.copy_id
    ) t (row)
"""


def test_the_same_seed_gives_the_same_rows(seeded):
    url = scratch("seed_again")
    recreate_empty_database(url)
    try:
        prepare_database(url)
        again = create_engine(url)
        try:
            seed(again, PLAN)
            assert scalar(again, FINGERPRINT) == scalar(seeded, FINGERPRINT)
        finally:
            again.dispose()
    finally:
        drop(url)
