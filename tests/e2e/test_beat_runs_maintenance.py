"""The whole path: beat schedules a job, the maintenance worker runs it."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from tests.support.commands import new_product, order_for, run
from tests.support.outcomes import await_outcome, scalar
from tests.support.workers import WorkerProcess, running_beat
from worker.service.maintenance.orders import expiry_key

pytestmark = pytest.mark.e2e


def test_beat_sends_the_expiry_job_and_the_maintenance_worker_cancels_the_order(runner, engine):
    sku = new_product(runner, stock=2)
    number = run(runner, order_for(sku)).result["order_number"]
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE orders SET created_at = now() - interval '3 days' WHERE order_number = :n"
            ),
            {"n": number},
        )
    fast = {"ORDERQ_SCHEDULE_EXPIRE_UNPAID_ORDERS_SECONDS": "1"}
    maintenance = WorkerProcess(
        concurrency=1, env=fast, queues=os.environ["ORDERQ_MAINTENANCE_QUEUE"], name="maint"
    )

    with maintenance.running(), running_beat(fast):
        expiry = await_outcome(engine, expiry_key(number), timeout=60)  # the job's own key

    assert (expiry.status, expiry.result["status"]) == ("succeeded", "cancelled")
    status = scalar(engine, "SELECT status FROM orders WHERE order_number = :n", n=number)
    assert status == "cancelled"
