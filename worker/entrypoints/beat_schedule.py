"""The beat schedule: every maintenance job whose interval setting is above zero.

Run a beat on every host if you like: each run is claimed in PostgreSQL before it is
sent (worker/entrypoints/beat_scheduler.py), so two or three beats send it once.
Runs fall on an interval grid aligned to the Unix epoch, the same instants on every
host. Each entry expires after one interval: if the maintenance worker is down,
missed runs are dropped instead of piling up, and the next interval brings a fresh one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker.entrypoints.beat_scheduler import GridSchedule
from worker.service.maintenance.catalog import JOBS
from worker.settings import WorkerSettings


def beat_schedule(settings: WorkerSettings) -> dict[str, dict[str, Any]]:
    """Celery's `beat_schedule` for these settings."""
    schedule = {}
    for job in JOBS:
        interval = job.interval(settings)
        if interval <= 0:
            continue
        schedule[job.name] = {
            "task": job.task_name,
            "schedule": GridSchedule(timedelta(seconds=interval)),
            "options": {"queue": settings.maintenance_queue, "expires": interval},
        }
    return schedule
