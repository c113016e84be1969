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
        assert entry["schedule"].run_every.total_seconds() == interval > 0
        assert entry["options"] == {"queue": "mq", "expires": interval}


def test_an_interval_of_zero_turns_a_job_off():
    schedule = beat_schedule(Settings(schedule_purge_ledger_seconds=0, schedule_analyze_seconds=7))

    assert "purge_ledger" not in schedule
    assert schedule["analyze_hot_tables"]["schedule"].run_every.total_seconds() == 7


def test_the_celery_app_routes_maintenance_away_from_commands():
    from worker.entrypoints.celery_app import app

    app.loader.import_default_modules()
    registered = {name for name in app.tasks if name.startswith("orderq.maintenance.")}
    assert registered == {job.task_name for job in JOBS}
    route = app.amqp.router.route({}, "orderq.maintenance.purge_ledger")
    assert route["queue"].name == app.conf.task_routes["orderq.maintenance.*"]["queue"]
    assert route["queue"].name != app.conf.task_default_queue


def test_runs_fall_on_the_same_epoch_grid_whatever_the_host_clock_reads_within_a_slot():
    from datetime import UTC, datetime, timedelta

    from worker.entrypoints.beat_scheduler import grid_slot

    every = timedelta(seconds=300)
    early = datetime(2026, 11, 29, 10, 5, 0, 10_000, tzinfo=UTC)
    late = datetime(2026, 11, 29, 10, 9, 59, 990_000, tzinfo=UTC)

    assert grid_slot(early, every) == grid_slot(late, every)
    assert grid_slot(early, every) == datetime(2026, 11, 29, 10, 5, tzinfo=UTC)
    assert grid_slot(late + timedelta(milliseconds=20), every) == datetime(
        2026, 11, 29, 10, 10, tzinfo=UTC
    )


def test_a_grid_entry_is_due_once_per_slot():
    from datetime import UTC, datetime, timedelta

    from worker.entrypoints.beat_scheduler import GridSchedule

    clock = [datetime(2026, 11, 29, 10, 0, 1, tzinfo=UTC)]
    schedule = GridSchedule(timedelta(seconds=10), nowfun=lambda: clock[0])

    due, wait = schedule.is_due(clock[0])  # started mid-slot: waits for the boundary
    assert (due, wait) == (False, 9.0)
    clock[0] = datetime(2026, 11, 29, 10, 0, 10, 5_000, tzinfo=UTC)
    assert schedule.is_due(datetime(2026, 11, 29, 10, 0, 1, tzinfo=UTC)).is_due
    assert not schedule.is_due(clock[0]).is_due  # just ran in this slot
