"""The beat schedule: every maintenance job whose interval setting is above zero.

Run exactly one beat. Each entry expires after one interval: if the maintenance worker
is down, missed runs are dropped instead of piling up, and the next interval brings a
fresh one. Two beats by mistake would only cause skips (advisory locks), not double work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
            "schedule": timedelta(seconds=interval),
            "options": {"queue": settings.maintenance_queue, "expires": interval},
        }
    return schedule
