"""Every maintenance job: its name, the setting holding its interval, and how it runs.

Celery tasks (`orderq.maintenance.<name>`), the beat schedule and
`orderq maintenance run` are all generated from `JOBS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from worker.service.maintenance import ledger, quarantine, republish, statistics
from worker.service.maintenance.loans import LOAN_SWEEPS
from worker.service.maintenance.orders import EXPIRE_UNPAID_ORDERS
from worker.service.maintenance.report import RunReport
from worker.service.maintenance.republish import SendCommand
from worker.service.maintenance.sweeps import CommandSweep, run_sweep
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


@dataclass(frozen=True)
class Job:
    name: str
    schedule_setting: str
    run: Callable[[MaintenanceContext], RunReport]
    summary: str

    @property
    def task_name(self) -> str:
        return TASK_PREFIX + self.name

    def interval(self, settings: WorkerSettings) -> int:
        """Seconds between runs; 0 means not scheduled."""
        return int(getattr(settings, self.schedule_setting))


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
        statistics.SNAPSHOT_TASK,
        "schedule_statement_snapshot_seconds",
        lambda ctx: statistics.snapshot_statements(ctx.settings, ctx.engine),
        "snapshot pg_stat_statements and flag regressions",
    ),
)
JOBS_BY_NAME: dict[str, Job] = {job.name: job for job in JOBS}
