"""Command sweeps: maintenance that changes business rows does it through commands.

A sweep finds rows that are due (an unpaid order past its payment window, a ready
reservation past its pickup deadline, …) and turns each into a command with a
deterministic idempotency key, e.g. `expire:ORD-000123`. The commands run through the
same runner as every queued command — attempt counting, one transaction, the ledger —
so a sweep that runs twice, or twice at once, still applies each change exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from producers.commands import Command
from worker.service.maintenance.report import RunReport, locked
from worker.service.runner import CommandRunner, RetryLater
from worker.settings import WorkerSettings

#: (keyset cursor of the row, the command for it), oldest first
DueCommand = tuple[tuple[Any, ...], Command]
#: (connection, settings, rows after this cursor or None, batch size) -> due commands
Finder = Callable[[Connection, WorkerSettings, tuple[Any, ...] | None, int], Sequence[DueCommand]]


@dataclass(frozen=True)
class CommandSweep:
    """A maintenance task that turns due rows into commands."""

    task: str
    find_due: Finder
    #: the settings field holding the task's interval in seconds (0 = off)
    schedule_setting: str
    #: one line for `orderq maintenance list`
    summary: str = ""


def run_sweep(
    sweep: CommandSweep, settings: WorkerSettings, engine: Engine, runner: CommandRunner
) -> RunReport:
    """Run every due command of `sweep`, in batches, under the sweep's advisory lock."""

    def body(report: RunReport) -> None:
        report.set(applied=0, replayed=0, rejected=0, deferred=0, failed=0)
        cursor: tuple[Any, ...] | None = None
        for _ in range(settings.maintenance_max_batches):
            with engine.connect() as connection:
                due = list(
                    sweep.find_due(connection, settings, cursor, settings.maintenance_batch_size)
                )
            for _, command in due:
                report.count(**{_tally(runner.run(command.message(), command.type)): 1})
            if due:
                cursor = due[-1][0]
            if len(due) < settings.maintenance_batch_size:
                report.set(more=False)
                return
        report.set(more=True)  # the batch limit stopped this run; the next one goes on

    return locked(engine, sweep.task, body)


def _tally(result: object) -> str:
    if isinstance(result, RetryLater):
        return "deferred"  # transient failure: still due, the next run tries again
    status = getattr(result, "status", "failed")
    if status == "succeeded":
        return "replayed" if getattr(result, "replayed", False) else "applied"
    return "rejected" if status == "rejected" else "failed"
