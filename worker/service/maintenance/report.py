"""What a maintenance run did, and the advisory lock every run is taken under."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from worker.adapters.advisory_locks import advisory_lock

log = logging.getLogger("orderq.maintenance")

SKIPPED_LOCKED = "another run of this task holds its advisory lock"


@dataclass
class RunReport:
    """One run of one task: skipped (and why), or the figures of what it did."""

    task: str
    skipped: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def count(self, **increments: int) -> None:
        """Add to counters (created at zero)."""
        for name, value in increments.items():
            self.figures[name] = self.figures.get(name, 0) + value

    def set(self, **values: Any) -> None:
        self.figures.update(values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what Celery returns and what the CLI prints."""
        data: dict[str, Any] = {"task": self.task}
        if self.skipped is not None:
            data["skipped"] = self.skipped
        data.update(self.figures)
        return data


def locked(engine: Engine, task: str, body: Callable[[RunReport], None]) -> RunReport:
    """Run `body(report)` holding the task's advisory lock, or skip if another run has it."""
    report = RunReport(task)
    with advisory_lock(engine, task) as acquired:
        if not acquired:
            report.skipped = SKIPPED_LOCKED
            return report
        body(report)
    return report


def log_run(
    job: str, report: RunReport | None, seconds: float, error: BaseException | None
) -> None:
    """One log line per run (with ORDERQ_LOG_FORMAT=json, one JSON object with the task,
    its result, duration and figures)."""
    fields: dict[str, Any] = {"task": job, "duration_ms": round(seconds * 1000, 3)}
    if error is not None or report is None:
        problem = f"{error.__class__.__name__}: {error}" if error is not None else "no report"
        log.error(
            "%s failed after %.3f s: %s",
            job,
            seconds,
            problem,
            extra={**fields, "result": "failed", "error": problem},
        )
    elif report.skipped is not None:
        log.info(
            "%s skipped: %s",
            job,
            report.skipped,
            extra={**fields, "result": "skipped", "skipped": report.skipped},
        )
    else:
        log.info(
            "%s done in %.3f s: %s",
            job,
            seconds,
            report.figures,
            extra={**fields, "result": "succeeded", "figures": report.figures},
        )
