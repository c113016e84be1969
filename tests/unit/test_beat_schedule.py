"""The beat schedule comes from settings: every job, its queue, an expiry, 0 = off."""

from __future__ import annotations

from orderq.settings import Settings
from worker.entrypoints.beat_schedule import beat_schedule
from worker.service.maintenance.catalog import JOBS


def test_every_job_is_scheduled_on_the_maintenance_queue_with_an_expiry():
    settings = Settings(maintenance_queue="mq")
    schedule = beat_schedule(settings)

    assert set(schedule) == {job.name for job in JOBS}
    for job in JOBS:
        entry = schedule[job.name]
        interval = job.interval(settings)
        assert entry["task"] == f"orderq.maintenance.{job.name}"
        assert entry["schedule"].total_seconds() == interval > 0
        assert entry["options"] == {"queue": "mq", "expires": interval}


def test_an_interval_of_zero_turns_a_job_off():
    schedule = beat_schedule(Settings(schedule_purge_ledger_seconds=0, schedule_analyze_seconds=7))

    assert "purge_ledger" not in schedule
    assert schedule["analyze_hot_tables"]["schedule"].total_seconds() == 7


def test_the_celery_app_routes_maintenance_away_from_commands():
    from worker.entrypoints.celery_app import app

    app.loader.import_default_modules()
    registered = {name for name in app.tasks if name.startswith("orderq.maintenance.")}
    assert registered == {job.task_name for job in JOBS}
    route = app.amqp.router.route({}, "orderq.maintenance.purge_ledger")
    assert route["queue"].name == app.conf.task_routes["orderq.maintenance.*"]["queue"]
    assert route["queue"].name != app.conf.task_default_queue
