"""Raw messages a careless producer could put on the queue, through a real worker:
each gets an answer (or a clearly logged drop) and the worker keeps running."""

from __future__ import annotations

import json
import uuid

import pytest
from kombu import Connection, Queue

from producers.outcomes import lookup
from tests.support.commands import new_product, order_for
from tests.support.ids import unique
from tests.support.outcomes import await_outcome

pytestmark = pytest.mark.e2e


def send_raw(settings, task: str, body: str | bytes) -> str:
    """Put a hand-made Celery message (protocol 2) on the command queue; return its id."""
    task_id = str(uuid.uuid4())
    with Connection(settings.require_broker_url()) as connection:
        connection.Producer().publish(
            body,
            exchange="",
            routing_key=settings.command_queue,
            declare=[Queue(settings.command_queue)],
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": task, "id": task_id, "lang": "py", "retries": 0},
        )
    return task_id


def celery_body(*args, **kwargs) -> str:
    return json.dumps([list(args), kwargs, {}])


def test_unknown_task_name_with_a_key_is_rejected_as_invalid_command(worker, settings, engine):
    key = unique("RAW")
    message = {"type": "place_order", "key": key, "customer_ref": "c", "lines": []}

    send_raw(settings, "orderq.orders.place_order_v2", celery_body(message))
    outcome = await_outcome(engine, key)

    assert (outcome.status, outcome.reason) == ("rejected", "invalid_command")
    assert "no command is sent to task 'orderq.orders.place_order_v2'" in outcome.message
    assert "Received unregistered task" not in worker.log_text()


def test_wrong_arguments_and_oversized_bodies_are_rejected(worker, settings, engine):
    shape_key, big_key = unique("RAW"), unique("RAW")
    shaped = {"type": "place_order", "key": shape_key, "customer_ref": "c", "lines": []}
    big = {"type": "place_order", "key": big_key, "customer_ref": "x" * 100_000, "lines": []}

    send_raw(settings, "orderq.orders.place_order", celery_body(shaped, "surplus"))
    send_raw(settings, "orderq.orders.place_order", celery_body(big))

    assert "got 2 positional" in await_outcome(engine, shape_key).message
    assert "exceeds the 65536-byte limit" in await_outcome(engine, big_key).message


def test_malformed_json_is_a_logged_drop_and_the_worker_carries_on(
    worker, settings, engine, runner, publisher
):
    task_id = send_raw(settings, "orderq.orders.place_order", b'{"key": "RAW-1", "type": "pla')
    sku = new_product(runner, stock=1)
    after = order_for(sku)
    publisher.publish(after)

    assert await_outcome(engine, after.key).status == "succeeded"
    worker.wait_for_log(f"DROPPED message {task_id}", timeout=10)
    assert lookup(engine, "RAW-1").status == "unknown"  # nothing trustworthy to store it under
    assert worker.is_running()
