"""Flower shows batched commands like any task, and a revoked task id is not run.

The session's worker batches (ORDERQ_BATCH_MAX_SIZE defaults to 32): its messages never
become Celery task requests, so the batcher sends the task events itself. Here a real
Flower watches the real worker, as an operator's would.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from producers.commands import PlaceOrder
from tests.support.cli import free_port, wait_for_port
from tests.support.commands import new_product, order_for
from tests.support.eventually import eventually
from tests.support.flower import start_flower
from tests.support.ids import unique
from tests.support.outcomes import await_outcome, ledger_rows

pytestmark = pytest.mark.e2e

CREDENTIALS = "ops:flower-batches"


class Flower:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path)
        token = base64.b64encode(CREDENTIALS.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def task(self, task_id: str) -> dict[str, Any]:
        try:
            return self.get(f"/api/task/info/{task_id}")
        except urllib.error.HTTPError as error:
            if error.code == 404:  # not seen (yet)
                return {}
            raise

    def settled(self, task_id: str, state: str) -> dict[str, Any]:
        return eventually(
            lambda: self.task(task_id),
            until=lambda task: task.get("state") == state,
            what=f"Flower showing task {task_id} as {state}",
        )


@pytest.fixture(scope="module")
def flower(worker, settings, tmp_path_factory) -> Iterator[Flower]:
    """`orderq flower` on a free port; returns once its event receiver hears the worker
    and the worker sends task events."""
    port = free_port()
    state = tmp_path_factory.mktemp("flower") / "flower.db"
    process = start_flower(port, CREDENTIALS, state)
    try:
        wait_for_port(port, timeout=30)
        flower = Flower(port)
        # worker heartbeats reach Flower's event state: its receiver is consuming
        eventually(
            lambda: flower.get("/api/workers?status=1"),
            until=lambda alive: any(alive.values()),
            what="Flower hearing the worker's heartbeats",
            timeout=30,
        )
        # what Flower asks the workers every few seconds, here with a reply to wait on
        assert control(settings).enable_events(**to_the(worker))
        yield flower
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        # the rest of the session runs without task events, as it started
        control(settings).disable_events(**to_the(worker))


def control(settings) -> Any:
    return Celery(broker=settings.require_broker_url(), set_as_current=False).control


def to_the(worker) -> dict[str, Any]:
    """Broadcast options: to the session's worker alone, waiting for its reply."""
    node = worker.hostname.replace("%h", socket.gethostname())
    return {"destination": [node], "reply": True, "limit": 1, "timeout": 10}


def test_flower_lists_batched_commands_with_their_outcomes(worker, flower, runner, publisher):
    sku = new_product(runner, stock=2)
    orders = [order_for(sku, 1), order_for(sku, 5), order_for(sku, 1)]
    receipts = [publisher.publish(order) for order in orders]

    succeeded, rejected, second = (flower.settled(r.task_id, "SUCCESS") for r in receipts)

    assert succeeded["name"] == PlaceOrder.task_name
    assert orders[0].key in succeeded["args"] and "'succeeded'" in succeeded["result"]
    assert "'rejected'" in rejected["result"] and "insufficient_stock" in rejected["result"]
    assert "'succeeded'" in second["result"]
    for task in (succeeded, rejected, second):
        assert task["received"] <= task["started"] <= task["succeeded"], task
        assert task["runtime"] >= 0 and task["worker"], task


def test_a_revoked_task_id_is_not_run(worker, flower, runner, settings, engine):
    sku = new_product(runner, stock=3)
    order, after = order_for(sku, 1), order_for(sku, 1)
    task_id = unique("revoked")
    app = Celery(broker=settings.require_broker_url(), set_as_current=False)
    assert app.control.revoke(task_id, **to_the(worker)), "the worker did not take the revocation"

    app.send_task(
        PlaceOrder.task_name,
        args=[order.message()],
        task_id=task_id,
        queue=settings.command_queue,
    )
    app.send_task(PlaceOrder.task_name, args=[after.message()], queue=settings.command_queue)

    flower.settled(task_id, "REVOKED")  # Celery drops it before announcing its name
    assert await_outcome(engine, after.key).status == "succeeded"
    assert ledger_rows(engine, order.key) == 0  # dropped unrun, as Celery does
