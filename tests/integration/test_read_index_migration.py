"""Migration 0011 builds its read-side indexes CONCURRENTLY: orders, works and members
stay writable while the indexes build, and every index ends valid."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from tests.support.migrations import (
    alembic_config,
    index_validity,
    scratch_engine,
    upgrading_while_a_writer_holds,
    write_with_lock_timeout,
)

ORDER_ROW = (
    "INSERT INTO orders (idempotency_key, customer_ref, status, total_cents) "
    "VALUES (:key, 'c', 'placed', 0)"
)
WORK_ROW = "INSERT INTO works (work_code, title) VALUES (:key, 'Written during the build')"
MEMBER_ROW = (
    "INSERT INTO members (member_number, name, status, loan_limit) "
    "VALUES (:key, 'Written during the build', 'active', 5)"
)
INDEXES = [
    "ix_loans_member_id_checked_out_at",
    "ix_members_email",
    "ix_members_name_trgm",
    "ix_members_phone_digits",
    "ix_orders_customer_ref_created_at",
    "ix_products_name_trgm",
    "ix_products_sku_pattern",
    "ix_stock_movements_product_id_created_at",
    "ix_works_search_text_trgm",
    "ix_works_search_vector",
]


def test_the_read_side_indexes_build_while_writes_go_on():
    with scratch_engine() as (url, engine):
        # up to the revision before 0011: earlier CONCURRENTLY builds (0010) would wait
        # for the held writer too, before 0011 ever started
        command.upgrade(alembic_config(url), "0010")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO orders (idempotency_key, customer_ref, status, total_cents) "
                    "SELECT 'o' || g, 'c' || g % 100, 'placed', 0 FROM generate_series(1, 20000) g"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO works (work_code, title, authors) "
                    "SELECT 'W' || g, 'Title ' || g, ARRAY['Émile Zola'] "
                    "FROM generate_series(1, 5000) g"
                )
            )
        # An open write on orders holding its snapshot makes every CONCURRENTLY build
        # wait for it (a build waits for older snapshots): the first one, on works,
        # stays in progress while the writes below go through.
        with upgrading_while_a_writer_holds(
            url, engine, "0011", "works", ORDER_ROW, "REPEATABLE READ", key="in-flight"
        ):
            write_with_lock_timeout(engine, WORK_ROW, key="W-DURING")
            write_with_lock_timeout(engine, MEMBER_ROW, key="M-DURING")
            write_with_lock_timeout(engine, ORDER_ROW, key="o-during")

        assert index_validity(engine, INDEXES) == [(name, True) for name in INDEXES]
        with engine.connect() as connection:
            found = connection.execute(
                text(
                    "SELECT work_code FROM works WHERE deleted_at IS NULL "
                    "AND search_vector @@ websearch_to_tsquery('english', orderq_fold('zola'))"
                    " ORDER BY id LIMIT 1"
                )
            ).scalar()
        assert found == "W1"  # rows from before the migration got their search vector
