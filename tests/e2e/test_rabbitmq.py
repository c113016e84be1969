"""RabbitMQ works as the broker too: the same exactly-once behaviour over AMQP."""

from __future__ import annotations

import os
import socket

import pytest

from orderq.settings import Settings
from producers.commands import PlaceOrder, RestockProduct, UpsertProduct
from producers.publisher import Publisher
from tests.support.ids import unique
from tests.support.leftovers import declared_amqp_queue
from tests.support.names import AMQP_URL
from tests.support.outcomes import await_outcome, orders_with_key, stock_of
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.e2e


def rabbitmq_reachable() -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(AMQP_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def amqp_worker(migrated_database):
    if not rabbitmq_reachable():
        pytest.skip(f"RabbitMQ is not reachable at {AMQP_URL}")
    queue = f"{os.environ['ORDERQ_COMMAND_QUEUE']}.amqp"
    declared_amqp_queue(AMQP_URL, queue)  # deleted when the session ends
    process = WorkerProcess(
        concurrency=2,
        name="amqp",
        env={"CELERY_BROKER_URL": AMQP_URL, "ORDERQ_COMMAND_QUEUE": queue},
    )
    process.start()
    yield Settings(broker_url=AMQP_URL, command_queue=queue)
    process.stop()


def test_duplicate_publishes_over_amqp_apply_once(amqp_worker, engine):
    sku = unique("AMQP")
    commands = [
        UpsertProduct(key=unique("up"), sku=sku, name="Lamp", price_cents=4500),
        RestockProduct(key=unique("rs"), sku=sku, qty=2),
    ]
    order = PlaceOrder(key=unique("order"), customer_ref="c", lines=[{"sku": sku, "qty": 2}])
    late = PlaceOrder(key=unique("order"), customer_ref="c", lines=[{"sku": sku, "qty": 1}])

    with Publisher(amqp_worker) as publisher:
        for command in commands:
            publisher.publish(command)
            assert await_outcome(engine, command.key).status == "succeeded"
        for _ in range(3):
            publisher.publish(order)
        publisher.publish(late)
        placed, refused = await_outcome(engine, order.key), await_outcome(engine, late.key)

    assert placed.status == "succeeded"
    assert (refused.status, refused.reason) == ("rejected", "insufficient_stock")
    assert orders_with_key(engine, order.key) == 1
    assert stock_of(engine, sku) == (2, 2)
