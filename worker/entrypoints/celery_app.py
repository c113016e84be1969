"""The Celery application: `celery -A worker.entrypoints.celery_app worker`."""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import worker_process_init

from producers.settings import get_settings
from worker.adapters.engine import forget_inherited_connections
from worker.entrypoints.celery_config import celery_config

app = Celery("orderq")
app.conf.update(celery_config(get_settings()))
app.conf.include = [
    "worker.entrypoints.tasks",
    "worker.entrypoints.maintenance.tasks",
    "worker.entrypoints.bench_tasks",
]

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    """A forked child must not reuse the parent's database connections."""
    forget_inherited_connections()
