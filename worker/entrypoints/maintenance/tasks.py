"""One thin Celery task per maintenance job (`orderq.maintenance.<name>`).

The maintenance queue is served by its own worker (`orderq maintenance worker`), so a
long purge never delays commands. Tasks do not retry: the next scheduled run is the
retry, and the advisory lock makes an overlapping one skip.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Task

from producers.publisher import Publisher
from producers.settings import get_settings
from worker.adapters.engine import get_engine
from worker.entrypoints.celery_app import app
from worker.entrypoints.tasks import runner
from worker.service.maintenance.catalog import JOBS, Job, MaintenanceContext


@lru_cache(maxsize=1)
def _publisher() -> Publisher:
    # track=False: re-sent commands are already recorded in command_deliveries
    return Publisher(get_settings(), track=False)


def context() -> MaintenanceContext:
    return MaintenanceContext(get_settings(), get_engine(), runner, _publisher)


def _maintenance_task(job: Job) -> Task:
    @app.task(name=job.task_name, ignore_result=True)
    def run_job() -> dict[str, Any]:
        return job.run(context()).as_dict()

    return run_job


MAINTENANCE_TASKS = {job.task_name: _maintenance_task(job) for job in JOBS}
