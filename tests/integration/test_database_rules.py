"""The database itself refuses the rows the code promises never to write."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique


def insert(engine, sql: str, **params) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def test_second_order_with_the_same_idempotency_key_is_refused(runner, engine):
    sku = new_product(runner, stock=2)
    command = order_for(sku)
    run(runner, command)

    with pytest.raises(IntegrityError, match="uq_orders_idempotency_key"):
        insert(
            engine,
            "INSERT INTO orders (idempotency_key, customer_ref, status, total_cents) "
            "VALUES (:k, 'x', 'placed', 0)",
            k=command.key,
        )


def test_second_ledger_row_for_a_key_is_refused(runner, engine):
    command = order_for(new_product(runner, stock=1))
    run(runner, command)

    with pytest.raises(IntegrityError, match="uq_command_ledger_idempotency_key"):
        insert(
            engine,
            "INSERT INTO command_ledger "
            "(idempotency_key, command_type, fingerprint, status, result) "
            "VALUES (:k, 'place_order', repeat('a', 64), 'succeeded', '{}')",
            k=command.key,
        )


@pytest.mark.parametrize(
    ("assignment", "constraint"),
    [
        ("on_hand = -1, reserved = 0", "ck_stock_levels_on_hand_not_negative"),
        ("reserved = -1", "ck_stock_levels_reserved_not_negative"),
        ("reserved = on_hand + 1", "ck_stock_levels_reserved_within_on_hand"),
    ],
)
def test_negative_or_overreserved_stock_is_refused(runner, engine, assignment, constraint):
    sku = new_product(runner, stock=3)

    with pytest.raises(IntegrityError, match=constraint):
        insert(
            engine,
            f"UPDATE stock_levels SET {assignment} "
            "WHERE product_id = (SELECT id FROM products WHERE sku = :s)",
            s=sku,
        )


def test_unknown_order_status_is_refused(runner, engine):
    with pytest.raises(IntegrityError, match="ck_orders_status_allowed"):
        insert(
            engine,
            "INSERT INTO orders (idempotency_key, customer_ref, status, total_cents) "
            "VALUES (:k, 'x', 'lost', 0)",
            k=unique("bad"),
        )


def test_zero_quantity_order_line_is_refused(runner, engine):
    command = order_for(new_product(runner, stock=1))
    run(runner, command)
    other_sku = new_product(runner, stock=0)

    with pytest.raises(IntegrityError, match="ck_order_items_qty_positive"):
        insert(
            engine,
            "INSERT INTO order_items "
            "(order_id, product_id, sku, qty, unit_price_cents, line_total_cents) "
            "SELECT o.id, p.id, p.sku, 0, 0, 0 FROM orders o, products p "
            "WHERE o.idempotency_key = :k AND p.sku = :s",
            k=command.key,
            s=other_sku,
        )


def test_order_numbers_keep_growing_past_a_million(runner, engine):
    """ORD-999999 is followed by ORD-1000000, not by a cut-off duplicate."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "SELECT setval('order_number_seq', greatest(last_value, 999998)) "
                "FROM order_number_seq"
            )
        )
    sku = new_product(runner, stock=5)

    numbers = [run(runner, order_for(sku)).result["order_number"] for _ in range(3)]

    assert len(set(numbers)) == 3
    assert all(number.startswith("ORD-") for number in numbers)
    assert max(int(number[4:]) for number in numbers) >= 1_000_000
    assert any(len(number) >= len("ORD-1000000") for number in numbers)
