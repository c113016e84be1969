"""The orderq Celery app with Celery's default acknowledgement settings, for the chaos
run's comparison only (`scripts/chaos.py --celery-defaults`). Never run this in
production: a worker killed mid-command loses the message."""

from __future__ import annotations

from worker.entrypoints.celery_app import app

app.conf.update(
    task_acks_late=False,  # ack on receipt, before the command runs
    task_reject_on_worker_lost=False,
    worker_prefetch_multiplier=4,
)
