"""Every maintenance job: its name, the setting holding its interval, and how it runs.

Celery tasks (`orderq.maintenance.<name>`), the beat schedule and
`orderq maintenance run` are all generated from `JOBS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter

from sqlalchemy import Engine

from worker.adapters.schedule_claims import record_run
from worker.service.maintenance import (
    ledger,
    quarantine,
    republish,
    restore_drill,
    statistics,
    upkeep,
)
from worker.service.maintenance.loans import LOAN_SWEEPS
from worker.service.maintenance.orders import EXPIRE_UNPAID_ORDERS
from worker.service.maintenance.report import RunReport, log_run
from worker.service.maintenance.republish import SendCommand
from worker.service.maintenance.sweeps import CommandSweep, run_sweep
from worker.service.observer import NO_OBSERVER, RunObserver
from worker.service.runner import CommandRunner
from worker.settings import WorkerSettings

TASK_PREFIX = "orderq.maintenance."


@dataclass(frozen=True)
class MaintenanceContext:
    """What a job needs, built by the composition root (worker.service.bootstrap)."""

    settings: WorkerSettings
    engine: Engine
    runner: CommandRunner
    send: SendCommand
    observer: RunObserver = NO_OBSERVER


@dataclass(frozen=True)
class Job:
    name: str
    schedule_setting: str
    run: Callable[[MaintenanceContext], RunReport]
    summary: str
    #: the task's own hard time limit in seconds, if not the worker's default
    time_limit: Callable[[WorkerSettings], int] | None = None

    @property
    def task_name(self) -> str:
        return TASK_PREFIX + self.name

    def interval(self, settings: WorkerSettings) -> int:
        """Seconds between runs; 0 means not scheduled."""
        return int(getattr(settings, self.schedule_setting))

    def perform(self, ctx: MaintenanceContext) -> RunReport:
        """Run the job once: log one line about the run and tell the context's observer
        (metrics). What `run` raises is raised again."""
        started = perf_counter()
        try:
            report = self.run(ctx)
        except Exception as error:
            seconds = perf_counter() - started
            log_run(self.name, None, seconds, error)
            ctx.observer.maintenance_run(self.name, None, seconds, error)
            raise
        seconds = perf_counter() - started
        log_run(self.name, report, seconds, None)
        ctx.observer.maintenance_run(self.name, report, seconds, None)
        return report


def sweep_job(sweep: CommandSweep, summary: str) -> Job:
    return Job(
        sweep.task,
        sweep.schedule_setting,
        lambda ctx: run_sweep(sweep, ctx.settings, ctx.engine, ctx.runner),
        summary,
    )


JOBS: tuple[Job, ...] = (
    sweep_job(EXPIRE_UNPAID_ORDERS, "cancel orders still unpaid after the payment window"),
    *(sweep_job(sweep, sweep.summary or f"loan sweep {sweep.task}") for sweep in LOAN_SWEEPS),
    Job(
        ledger.TASK,
        "schedule_purge_ledger_seconds",
        lambda ctx: ledger.purge_ledger(ctx.settings, ctx.engine),
        "delete ledger rows older than the retention window",
    ),
    Job(
        quarantine.TASK,
        "schedule_purge_quarantine_seconds",
        lambda ctx: quarantine.purge_quarantine(ctx.settings, ctx.engine),
        "delete quarantined messages older than the retention window",
    ),
    Job(
        republish.TASK,
        "schedule_republish_stuck_seconds",
        lambda ctx: republish.republish_stuck(ctx.settings, ctx.engine, ctx.send),
        "re-send accepted commands that have no outcome after a while",
    ),
    Job(
        statistics.ANALYZE_TASK,
        "schedule_analyze_seconds",
        lambda ctx: statistics.analyze_hot_tables(ctx.settings, ctx.engine),
        "ANALYZE hot tables that changed enough",
    ),
    Job(
        statistics.INDEX_HEALTH_TASK,
        "schedule_index_health_seconds",
        lambda ctx: statistics.check_index_health(ctx.settings, ctx.engine),
        "report invalid, unused and duplicate indexes",
    ),
    Job(
        upkeep.BLOAT_TASK,
        "schedule_estimate_bloat_seconds",
        lambda ctx: upkeep.estimate_bloat(ctx.settings, ctx.engine),
        "estimate table and index bloat, report what is past the threshold",
    ),
    Job(
        upkeep.VACUUM_TASK,
        "schedule_vacuum_dead_rows_seconds",
        lambda ctx: upkeep.vacuum_dead_rows(ctx.settings, ctx.engine),
        "VACUUM (ANALYZE) tables past the dead-row threshold",
    ),
    Job(
        upkeep.REINDEX_TASK,
        "schedule_reindex_indexes_seconds",
        lambda ctx: upkeep.reindex_indexes(ctx.settings, ctx.engine),
        "REINDEX CONCURRENTLY invalid and bloated indexes",
    ),
    Job(
        statistics.SNAPSHOT_TASK,
        "schedule_statement_snapshot_seconds",
        lambda ctx: statistics.snapshot_statements(ctx.settings, ctx.engine),
        "snapshot pg_stat_statements and flag regressions",
    ),
    Job(
        restore_drill.TASK,
        "schedule_restore_drill_seconds",
        lambda ctx: restore_drill.restore_drill(ctx.settings, ctx.engine),
        "restore the newest backup into a scratch database and verify it",
        time_limit=lambda settings: settings.restore_drill_time_limit_seconds,
    ),
)
JOBS_BY_NAME: dict[str, Job] = {job.name: job for job in JOBS}


def run_scheduled(job: Job, ctx: MaintenanceContext, scheduled_for: str | None) -> RunReport:
    """Run `job` as beat sent it: the start is counted on the run's claim first (a run
    sent or delivered twice would show there as two), then the job runs."""
    if scheduled_for is not None:
        record_run(ctx.engine, job.name, datetime.fromisoformat(scheduled_for))
    return job.perform(ctx)
