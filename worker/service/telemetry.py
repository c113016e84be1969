"""The observer a worker process runs with: Prometheus metrics, one JSON log line per
decided command (with ORDERQ_LOG_FORMAT=json) and the outcome on the task's trace span.

Wired in by the composition root (worker.service.bootstrap); the runner only knows the
`RunObserver` protocol. Recording must never break a command: a failure here is logged
once per process and otherwise ignored.
"""

from __future__ import annotations

import logging
import time
from time import perf_counter
from typing import TYPE_CHECKING, Any

from worker.adapters import metrics, tracing
from worker.domain.errors import IdempotencyKeyReused
from worker.service.observer import Delivery
from worker.service.outcome import Outcome
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from worker.service.maintenance.report import RunReport
    from worker.service.runner import Result

log = logging.getLogger("orderq.decisions")

#: `orderq_commands_total{outcome}` values besides the stored statuses
REPLAYED = "replayed"
REUSED = "reused"


def outcome_label(outcome: Outcome) -> str:
    """`succeeded`, `rejected` or `failed` for a decision made by this delivery;
    `replayed` for an outcome read back; `reused` for a refused reuse of a key."""
    if outcome.replayed:
        return REPLAYED
    if outcome.reason == IdempotencyKeyReused.reason:
        return REUSED
    return outcome.status


class Telemetry:
    """Records what the runner and the maintenance jobs report."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.log_decisions = settings.log_format == "json"
        self._complained = False
        # labelled children, looked up once: `labels()` is most of a metric update's cost
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def attempt_counted(self, delivery: Delivery) -> None:
        try:
            self._child(metrics.ATTEMPTS, delivery.command_type).inc()
        except Exception as error:
            self._complain(error)

    def finished(self, delivery: Delivery, result: Result) -> None:
        if not isinstance(result, Outcome):
            return  # retried later: not an outcome yet (the attempt was counted)
        try:
            self._record(delivery, result, perf_counter())
        except Exception as error:
            self._complain(error)

    def _record(self, delivery: Delivery, outcome: Outcome, now: float) -> None:
        label = outcome_label(outcome)
        self._child(metrics.COMMANDS, delivery.command_type, label).inc()
        decided = label not in (REPLAYED, REUSED)
        latency = delivery.decision_seconds(now) if decided else None
        if latency is not None:
            self._child(metrics.DECISION_SECONDS, delivery.command_type).observe(latency)
        if tracing.active() is not None:
            tracing.annotate(
                {
                    "orderq.key": delivery.key,
                    "orderq.command_type": delivery.command_type,
                    "orderq.outcome": label,
                    "orderq.reason": outcome.reason,
                    "orderq.attempt": delivery.attempt,
                }
            )
        if self.log_decisions:
            log.info(
                "command %s",
                label,
                extra={
                    "key": delivery.key,
                    "type": delivery.command_type,
                    "outcome": label,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "attempt": delivery.attempt,
                    "duration_ms": round((now - delivery.started) * 1000, 3),
                    "decision_latency_s": round(latency, 6) if latency is not None else None,
                    "trace_id": tracing.current_trace_id(),
                },
            )

    def maintenance_run(
        self, job: str, report: RunReport | None, seconds: float, error: BaseException | None
    ) -> None:
        try:
            result = maintenance_result(report, error)
            self._child(metrics.MAINTENANCE_RUNS, job, result).inc()
            if result == "succeeded":
                metrics.MAINTENANCE_LAST_SUCCESS.labels(job).set(time.time())
        except Exception as failure:
            self._complain(failure)

    def _complain(self, error: Exception) -> None:
        if not self._complained:
            self._complained = True
            log.warning(
                "could not record metrics (reported once per process): %s: %s",
                error.__class__.__name__,
                error,
            )


def maintenance_result(report: RunReport | None, error: BaseException | None) -> str:
    """`succeeded`, `skipped` (another run held the lock) or `failed`."""
    if error is not None or report is None:
        return "failed"
    return "skipped" if report.skipped is not None else "succeeded"
