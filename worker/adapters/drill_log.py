"""`restore_drills`: the result of every restore drill, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text


@dataclass
class DrillResult:
    backup_file: str
    scratch_database: str
    started_at: datetime
    status: str = "failed"  # passed | failed
    backup_sha256: str | None = None
    restored_rows: dict[str, int] = field(default_factory=dict)
    failed_invariants: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


def record_drill(engine: Engine, result: DrillResult) -> int:
    """Store one drill's result; return its id."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                text(
                    "INSERT INTO restore_drills (backup_file, backup_sha256, scratch_database, "
                    "started_at, status, restored_rows, failed_invariants, error) VALUES "
                    "(:backup_file, :backup_sha256, :scratch_database, :started_at, :status, "
                    ":restored_rows, :failed_invariants, :error) RETURNING id"
                ),
                {
                    "backup_file": result.backup_file,
                    "backup_sha256": result.backup_sha256,
                    "scratch_database": result.scratch_database,
                    "started_at": result.started_at,
                    "status": result.status,
                    "restored_rows": Jsonb(result.restored_rows),
                    "failed_invariants": Jsonb(result.failed_invariants),
                    "error": result.error,
                },
            ).scalar_one()
        )


def latest_drills(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """The most recent drills, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, backup_file, backup_sha256, scratch_database, started_at, "
                "finished_at, status, restored_rows, failed_invariants, error "
                "FROM restore_drills ORDER BY started_at DESC LIMIT :limit"
            ),
            {"limit": limit},
        ).mappings()
        return [dict(row) for row in rows]
