"""Purge ledger rows older than the retention window, in bounded batches.

After the purge a redelivered command is no longer recognised by the ledger, but
business unique keys still deduplicate: a place-order whose key already created an
order answers with that order (see executor.execute's `recover`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from worker.adapters.ledger_retention import PurgedBatch, purge_ledger_batch
from worker.service.maintenance.report import RunReport, locked
from worker.settings import WorkerSettings

TASK = "purge_ledger"


def purge_ledger(
    settings: WorkerSettings,
    engine: Engine,
    *,
    on_batch: Callable[[PurgedBatch], None] | None = None,
) -> RunReport:
    """Delete old ledger rows until none is left or the batch limit is reached.

    `on_batch` is called after each committed batch (progress reporting).
    """
    retention = settings.ledger_retention_days * 86_400

    def body(report: RunReport) -> None:
        report.set(purged=0, deliveries_purged=0, batches=0, more=False)
        for _ in range(settings.maintenance_max_batches):
            batch = purge_ledger_batch(engine, retention, settings.maintenance_batch_size)
            report.count(purged=batch.ledger_rows, deliveries_purged=batch.delivery_rows, batches=1)
            if on_batch is not None:
                on_batch(batch)
            if batch.ledger_rows < settings.maintenance_batch_size:
                return
        report.set(more=True)

    return locked(engine, TASK, body)
