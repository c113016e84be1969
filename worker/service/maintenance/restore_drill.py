"""The restore drill: restore the newest backup into a scratch database, verify every
invariant there, record the result in `restore_drills`, drop the scratch database.

A backup that was never restored is a hope, not a backup. This job proves the newest
one restores and holds together, on a schedule, like the other maintenance jobs: under
its advisory lock (two drills never overlap), bounded (pg_restore is killed past
`restore_drill_timeout_seconds`; the task's own time limit sits above that), and
expiring after one interval.

It lives in the maintenance worker on purpose — the one job that runs an external
program (pg_restore, through worker.adapters.pg_tools): that host then needs the
PostgreSQL client tools and read access to ORDERQ_BACKUP_DIR, and its database role
the right to create databases (see docs/backup.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, pool
from sqlalchemy.engine import make_url

from producers.database import build_engine, normalize_database_url
from worker.adapters import integrity
from worker.adapters.backups import (
    check_checksum,
    latest_backup,
    restore,
    row_counts,
    scratch_database,
)
from worker.adapters.drill_log import DrillResult, record_drill
from worker.adapters.pg_tools import find_tool, server_major
from worker.adapters.tables import metadata
from worker.service.maintenance.report import RunReport, locked
from worker.settings import WorkerSettings

TASK = "restore_drill"


def scratch_url(settings: WorkerSettings) -> str:
    """The drill's scratch database, on the same server as orderq's (straight, no pooler)."""
    source = make_url(normalize_database_url(settings.require_admin_database_url()))
    name = settings.restore_drill_database or f"{source.database}_restore_drill"
    return source.set(database=name).render_as_string(hide_password=False)


def drill(settings: WorkerSettings, engine: Engine, backup: Path) -> DrillResult:
    """Restore `backup` into the scratch database and verify it (records nothing)."""
    target = scratch_url(settings)
    result = DrillResult(
        backup_file=str(backup),
        scratch_database=make_url(target).database or "",
        started_at=datetime.now(UTC),
    )
    try:
        result.backup_sha256 = check_checksum(backup)
        folders = [settings.pg_bin_dir] if settings.pg_bin_dir else []
        tool = find_tool("pg_restore", server_major(engine), folders)
        with scratch_database(target):
            restore(tool, backup, target, timeout=settings.restore_drill_timeout_seconds)
            result.restored_rows = row_counts(target, sorted(metadata.tables))
            restored = build_engine(settings, url=target, poolclass=pool.NullPool)
            try:
                verification = integrity.verify(restored)
            finally:
                restored.dispose()
        result.failed_invariants = {
            name: items[:20] for name, items in verification.violations.items() if items
        }
        result.status = "passed" if verification.ok else "failed"
    except Exception as error:  # every failure is a result to record, not a crash
        result.status = "failed"
        result.error = f"{error.__class__.__name__}: {' '.join(str(error).split())}"[:2000]
    return result


def restore_drill(settings: WorkerSettings, engine: Engine) -> RunReport:
    """Drill the newest backup in ORDERQ_BACKUP_DIR and record the result."""

    def body(report: RunReport) -> None:
        if settings.backup_dir is None:
            report.skipped = "ORDERQ_BACKUP_DIR is not set: there is no backup to drill"
            return
        folder = Path(settings.backup_dir)
        backup = latest_backup(folder) if folder.is_dir() else None
        if backup is None:
            result = DrillResult(str(folder), "", datetime.now(UTC))
            result.error = f"no complete backup (file + .sha256) in {folder}"
        else:
            result = drill(settings, engine, backup)
        drill_id = record_drill(engine, result)
        report.set(
            drill=drill_id,
            backup=result.backup_file,
            status=result.status,
            failed_invariants=sorted(result.failed_invariants),
            error=result.error,
            restored_rows=sum(result.restored_rows.values()),
        )

    return locked(engine, TASK, body)
