"""The whole path: beat schedules a job, the maintenance worker runs it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support.commands import new_product, order_for, run
from tests.support.workers import PROJECT_ROOT, WorkerProcess

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
    schedule_dir = tempfile.mkdtemp(prefix="orderq-beat-")
    beat = None
    maintenance.start()
    try:
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.entrypoints.celery_app",
                "beat",
                f"--schedule={Path(schedule_dir) / 'schedule'}",
                "--loglevel=INFO",
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, **fast},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                status = connection.execute(
                    text("SELECT status FROM orders WHERE order_number = :n"), {"n": number}
                ).scalar()
            if status == "cancelled":
                break
            time.sleep(0.2)
    finally:
        if beat is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(beat.pid, signal.SIGTERM)
            beat.wait(20)
        maintenance.stop()
    assert status == "cancelled"
    assert "orderq.maintenance.expire_unpaid_orders" in maintenance.log_text()
