"""A task that does nothing, so the benchmark can measure Celery's own per-task cost."""

from __future__ import annotations

from worker.entrypoints.celery_app import app


@app.task(name="orderq.bench.noop")
def noop(_message: object = None) -> None:
    """Do nothing (acked late like every orderq task)."""
