"""Orders through the real path: publisher -> Redis -> celery worker processes -> PostgreSQL."""

from __future__ import annotations

import pytest

from producers.commands import RestockProduct, UpsertProduct
from tests.support.ids import unique
from tests.support.outcomes import await_outcome, scalar, stock_of

pytestmark = pytest.mark.e2e


def publish_and_wait(publisher, engine, command):
    publisher.publish(command)
    return await_outcome(engine, command.key)


def new_product(publisher, engine, stock: int) -> str:
    sku = unique("SKU")
    publish_and_wait(
        publisher, engine, UpsertProduct(key=unique("up"), sku=sku, name="Mug", price_cents=900)
    )
    if stock:
        publish_and_wait(publisher, engine, RestockProduct(key=unique("rs"), sku=sku, qty=stock))
    return sku


def place(sku: str, qty: int = 1, key: str | None = None):
    from producers.commands import PlaceOrder

    return PlaceOrder(
        key=key or unique("order"), customer_ref="web", lines=[{"sku": sku, "qty": qty}]
    )


def test_published_twice_one_order_same_outcome(worker, publisher, engine):
    sku = new_product(publisher, engine, stock=3)
    command = place(sku, qty=2)

    publisher.publish(command)
    publisher.publish(command)
    outcome = await_outcome(engine, command.key)

    assert outcome.status == "succeeded"
    assert (
        scalar(engine, "SELECT count(*) FROM orders WHERE idempotency_key = :k", k=command.key) == 1
    )
    assert stock_of(engine, sku) == (3, 2)
