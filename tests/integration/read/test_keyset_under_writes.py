"""Keyset pages while a real writer keeps adding rows to the same listing."""

from __future__ import annotations

import threading
from collections import Counter

from producers.commands import PlaceOrder
from tests.support.commands import new_product, run
from tests.support.eventually import eventually
from tests.support.ids import unique


class OrderWriter(threading.Thread):
    """Places orders for one customer, one after another, until stopped."""

    def __init__(self, runner, customer: str, sku: str) -> None:
        super().__init__(daemon=True)
        self.runner, self.customer, self.sku = runner, customer, sku
        self.committed: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                command = PlaceOrder(
                    key=unique("w"), customer_ref=self.customer, lines=[{"sku": self.sku, "qty": 1}]
                )
                outcome = run(self.runner, command)
                assert outcome.status == "succeeded", outcome
                self.committed.append(outcome.result["order_number"])
        except BaseException as error:
            self.error = error


def test_every_existing_row_appears_exactly_once_while_rows_are_inserted(reader, runner):
    sku = new_product(runner, stock=100_000)
    customer = unique("busy")
    existing = []
    for _ in range(25):
        outcome = run(
            runner,
            PlaceOrder(key=unique("o"), customer_ref=customer, lines=[{"sku": sku, "qty": 1}]),
        )
        existing.append(outcome.result["order_number"])
    writer = OrderWriter(runner, customer, sku)
    writer.start()
    try:
        eventually(lambda: len(writer.committed) >= 2, what="the writer committing orders")
        existing += list(writer.committed)  # committed before the first page is read
        seen, cursor, pages = [], None, 0
        while True:
            before = len(writer.committed)
            page = reader.orders_of_customer(customer, limit=4, cursor=cursor)
            seen += [r["order_number"] for r in page.results]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            # the next page is read only after another order went in meanwhile
            eventually(
                lambda before=before: len(writer.committed) > before or writer.error,
                what="another order committed between two pages",
            )
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error

    counts = Counter(seen)
    assert [number for number, n in counts.items() if n > 1] == []
    assert [number for number in existing if counts[number] != 1] == []
    placed_order = sorted(existing, key=lambda number: int(number.removeprefix("ORD-")))
    assert [number for number in seen if number in set(existing)] == placed_order[::-1]
    assert pages >= 7  # the writer really interleaved with the reader
    assert len(writer.committed) >= pages
