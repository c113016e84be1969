"""Purge quarantined messages past the retention window, in bounded batches.

A flood of distinct bad messages adds one row each; this keeps the quarantine to what
an operator may still want to look at. The keys those messages answered keep their
rejection in the ledger (purged with the ledger's own retention).
"""

from __future__ import annotations

from sqlalchemy import Engine

from worker.adapters.quarantine import QuarantineStore
from worker.service.maintenance.report import RunReport, locked
from worker.settings import WorkerSettings

TASK = "purge_quarantine"


def purge_quarantine(settings: WorkerSettings, engine: Engine) -> RunReport:
    """Delete quarantined messages last seen before the window until none is left or the
    batch limit is reached."""
    retention = settings.quarantine_retention_days * 86_400
    store = QuarantineStore(engine)

    def body(report: RunReport) -> None:
        report.set(purged=0, batches=0, more=False)
        for _ in range(settings.maintenance_max_batches):
            deleted = store.purge_batch(retention, settings.maintenance_batch_size)
            report.count(purged=deleted, batches=1)
            if deleted < settings.maintenance_batch_size:
                return
        report.set(more=True)

    return locked(engine, TASK, body)
