"""One thin Celery task per maintenance job (`orderq.maintenance.<name>`).

The maintenance queue is served by its own worker (`orderq maintenance worker`), so a
long purge never delays commands. Tasks do not retry: the next scheduled run is the
retry, and the advisory lock makes an overlapping one skip.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from worker.entrypoints.celery_app import app
from worker.service.maintenance.catalog import JOBS, Job


def _maintenance_task(job: Job) -> Task:
    @app.task(name=job.task_name, ignore_result=True)
    def run_job() -> dict[str, Any]:
        return job.perform(app.services.maintenance).as_dict()

    return run_job


MAINTENANCE_TASKS = {job.task_name: _maintenance_task(job) for job in JOBS}
