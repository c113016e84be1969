"""Keyset listings and the hot report: every row once, in order; cursors checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from orderq.read import MAX_LIMIT, InvalidCursor, InvalidQuery
from producers.commands import CancelOrder, CheckoutCopy, PlaceOrder, ReturnCopy
from tests.support.commands import new_product, run
from tests.support.ids import unique
from tests.support.library import new_member, new_work
from tests.support.reads import all_pages


def place(runner, customer: str, lines: list[tuple[str, int]]) -> str:
    command = PlaceOrder(
        key=unique("o"), customer_ref=customer, lines=[{"sku": s, "qty": q} for s, q in lines]
    )
    outcome = run(runner, command)
    assert outcome.status == "succeeded", outcome
    return outcome.result["order_number"]


def test_a_customers_orders_page_by_page_newest_first(reader, runner):
    sku = new_product(runner, stock=50)
    customer = unique("cust")
    numbers = [place(runner, customer, [(sku, 1)]) for _ in range(7)]

    seen = all_pages(lambda c: reader.orders_of_customer(customer, limit=3, cursor=c))

    assert [r["order_number"] for r in seen] == list(reversed(numbers))
    assert {"order_number", "status", "total_cents", "created_at"} <= seen[0].keys()


def test_a_members_active_loans_and_history(reader, runner):
    member = new_member(runner, loan_limit=5)
    _, barcodes = new_work(runner, copies=3)
    for barcode in barcodes:
        assert (
            run(runner, CheckoutCopy(key=unique("co"), member=member, barcode=barcode)).status
            == "succeeded"
        )
    assert run(runner, ReturnCopy(key=unique("rt"), barcode=barcodes[0])).status == "succeeded"

    active = all_pages(lambda c: reader.member_loans(member, "active", limit=1, cursor=c))
    history = all_pages(lambda c: reader.member_loans(member, "history", limit=2, cursor=c))

    assert [r["barcode"] for r in active] == [barcodes[2], barcodes[1]]
    assert [r["barcode"] for r in history] == list(reversed(barcodes))
    assert history[-1]["returned_at"] is not None


def test_a_products_movements_newest_first(reader, runner):
    sku = new_product(runner, stock=10)  # one restock movement
    numbers = [place(runner, unique("c"), [(sku, 2)]) for _ in range(3)]
    run(runner, CancelOrder(key=unique("x"), order_number=numbers[0]))

    seen = all_pages(lambda c: reader.product_movements(sku, limit=2, cursor=c))

    assert [(r["reason"], r["order_number"]) for r in seen] == [
        ("release", numbers[0]),
        ("reserve", numbers[2]),
        ("reserve", numbers[1]),
        ("reserve", numbers[0]),
        ("restock", None),
    ]


def test_the_ledger_by_outcome_and_time(reader, runner):
    since = datetime.now(UTC) - timedelta(seconds=1)
    sku = new_product(runner, stock=1)
    kept = place(runner, unique("c"), [(sku, 1)])
    refused = PlaceOrder(key=unique("short"), customer_ref="c", lines=[{"sku": sku, "qty": 1}])
    assert run(runner, refused).status == "rejected"
    until = datetime.now(UTC) + timedelta(seconds=1)

    rejected = all_pages(lambda c: reader.ledger("rejected", since, until, limit=1, cursor=c))
    succeeded = all_pages(lambda c: reader.ledger("succeeded", since, until, limit=2, cursor=c))

    assert refused.key in [r["key"] for r in rejected]
    assert next(r for r in rejected if r["key"] == refused.key)["reason"] == "insufficient_stock"
    assert kept in [r["result"].get("order_number") for r in succeeded if r["result"]]
    assert refused.key not in [r["key"] for r in succeeded]


def test_a_window_left_to_its_default_stays_the_same_window_page_after_page(reader, runner):
    """No since/until: the first page fixes the window (the last `days` up to now) and
    the cursor keeps it, so the clock moving between pages never refuses the cursor."""
    sku = new_product(runner, stock=10, price_cents=1000)
    numbers = [place(runner, unique("c"), [(sku, 2)]) for _ in range(3)]

    first = reader.orders_over_total("placed", None, None, 1500, limit=1)
    seen, cursor = list(first.results), first.next_cursor
    while cursor is not None:
        page = reader.orders_over_total("placed", None, None, 1500, MAX_LIMIT, cursor)
        seen, cursor = seen + page.results, page.next_cursor
    ledger, cursor = [], None
    for _ in range(3):  # the ledger's default window (one day) likewise
        page = reader.ledger("succeeded", limit=2, cursor=cursor)
        ledger, cursor = ledger + page.results, page.next_cursor
        if cursor is None:
            break

    found = [row["order_number"] for row in seen]
    assert found[0] == numbers[-1]
    assert len(set(found)) == len(found) and set(numbers) <= set(found)
    assert len(ledger) == len({entry["key"] for entry in ledger}) >= 3
    with pytest.raises(InvalidCursor, match="other filters"):  # another default window
        reader.orders_over_total("placed", None, None, 1500, 1, first.next_cursor, days=2)


def test_the_hot_report_sums_items_keeps_orders_above_the_threshold_newest_first(
    reader, runner, engine
):
    cheap = new_product(runner, stock=100, price_cents=100)
    dear = new_product(runner, stock=100, price_cents=2500)
    since = datetime.now(UTC) - timedelta(seconds=1)
    small = place(runner, unique("c"), [(cheap, 3)])  # 300
    edge = place(runner, unique("c"), [(cheap, 5), (dear, 2)])  # 5500: not above 5500
    big = place(runner, unique("c"), [(cheap, 6), (dear, 2)])  # 5600
    bigger = place(runner, unique("c"), [(dear, 3)])  # 7500
    until = datetime.now(UTC) + timedelta(seconds=1)

    rows = all_pages(
        lambda c: reader.orders_over_total("placed", since, until, 5500, limit=1, cursor=c)
    )
    ours = [r for r in rows if r["order_number"] in {small, edge, big, bigger}]

    assert [(r["order_number"], r["items_total_cents"], r["lines"]) for r in ours] == [
        (bigger, 7500, 1),
        (big, 5600, 2),
    ]
    with engine.connect() as connection:  # the report's totals agree with the orders'
        totals = dict(
            connection.execute(
                text("SELECT order_number, total_cents FROM orders WHERE order_number = ANY(:n)"),
                {"n": [big, bigger]},
            ).all()
        )
    assert totals == {big: 5600, bigger: 7500}


def test_a_tampered_malformed_or_foreign_cursor_is_refused(reader, runner):
    sku = new_product(runner, stock=10)
    customer = unique("cust")
    for _ in range(3):
        place(runner, customer, [(sku, 1)])
    cursor = reader.orders_of_customer(customer, limit=1).next_cursor
    assert cursor is not None
    payload, signature = cursor.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]

    refusals = {
        "tampered": (lambda: reader.orders_of_customer(customer, 1, f"{flipped}.{signature}")),
        "malformed": (lambda: reader.orders_of_customer(customer, 1, "not-a-cursor")),
        "truncated": (lambda: reader.orders_of_customer(customer, 1, cursor[:-3])),
        "other customer": (lambda: reader.orders_of_customer("someone-else", 1, cursor)),
        "other listing": (lambda: reader.product_movements(sku, 1, cursor)),
    }
    for case, attempt in refusals.items():
        with pytest.raises(InvalidCursor):
            attempt()
            pytest.fail(case)

    assert len(reader.orders_of_customer(customer, 1, cursor).results) == 1


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_page_size_is_bounded(reader, limit):
    with pytest.raises(InvalidQuery):
        reader.orders_of_customer("anyone", limit=limit)
