"""Snapshots of pg_stat_statements and the regression check against a baseline.

A snapshot stores the cumulative counters of the top statements at one moment. The
mean time of a statement over a *period* is the difference between two snapshots
(total time / calls), so a statement that got slow recently shows up even when its
all-time mean is still low. Each statement's first snapshot with enough calls becomes
its baseline; `DELETE FROM statement_baselines` starts over (after a deliberate change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from worker.adapters.monitoring import top_statements

_INSERT_SNAPSHOT = text(
    """
    INSERT INTO statement_snapshots (taken_at, queryid, query, calls, total_exec_ms, rows)
    VALUES (:taken_at, :queryid, :query, :calls, :total_exec_ms, :rows)
    """
)
_NEW_BASELINES = text(
    """
    INSERT INTO statement_baselines (queryid, query, mean_exec_ms, calls)
    SELECT queryid, query, total_exec_ms / calls, calls
    FROM statement_snapshots
    WHERE taken_at = :taken_at AND calls >= :min_calls
    ON CONFLICT (queryid) DO NOTHING
    """
)
# The period of a statement ends at this snapshot and starts at its previous one; if
# its counters went down, pg_stat_statements was reset and the period starts at zero.
_PERIODS = text(
    """
    WITH current AS (
        SELECT * FROM statement_snapshots WHERE taken_at = :taken_at
    ), previous AS (
        SELECT DISTINCT ON (s.queryid) s.queryid, s.calls, s.total_exec_ms
        FROM statement_snapshots s JOIN current c ON c.queryid = s.queryid
        WHERE s.taken_at < :taken_at
        ORDER BY s.queryid, s.taken_at DESC
    ), periods AS (
        SELECT c.queryid, c.query, b.mean_exec_ms AS baseline_mean_ms,
               CASE WHEN p.calls IS NULL OR c.calls < p.calls THEN c.calls
                    ELSE c.calls - p.calls END AS period_calls,
               CASE WHEN p.calls IS NULL OR c.calls < p.calls THEN c.total_exec_ms
                    ELSE c.total_exec_ms - p.total_exec_ms END AS period_total_ms
        FROM current c JOIN statement_baselines b ON b.queryid = c.queryid
        LEFT JOIN previous p ON p.queryid = c.queryid
    )
    SELECT queryid, query, baseline_mean_ms, period_calls,
           period_total_ms / nullif(period_calls, 0) AS period_mean_ms
    FROM periods
    WHERE period_calls >= :min_calls
      AND period_total_ms / nullif(period_calls, 0) > baseline_mean_ms * :factor
    ORDER BY period_total_ms / nullif(period_calls, 0) / nullif(baseline_mean_ms, 0) DESC
    """
)
_PURGE_OLD = text(
    """
    DELETE FROM statement_snapshots WHERE id IN (
        SELECT id FROM statement_snapshots
        WHERE taken_at < now() - make_interval(secs => :retention)
        LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    """
)


@dataclass(frozen=True)
class Regression:
    queryid: int
    query: str
    baseline_mean_ms: float
    period_mean_ms: float
    period_calls: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "queryid": self.queryid,
            "query": self.query[:200],
            "baseline_mean_ms": round(self.baseline_mean_ms, 3),
            "period_mean_ms": round(self.period_mean_ms, 3),
            "period_calls": self.period_calls,
            "slower_by": round(self.period_mean_ms / max(self.baseline_mean_ms, 1e-9), 2),
        }


def take_snapshot(connection: Connection, taken_at: datetime, top: int) -> int:
    """Store the counters of the `top` statements by total time; return how many."""
    statements = top_statements(connection, top)
    for statement in statements:
        connection.execute(_INSERT_SNAPSHOT, {"taken_at": taken_at, **statement})
    return len(statements)


def record_baselines(connection: Connection, taken_at: datetime, min_calls: int) -> int:
    """Give statements first seen (with enough calls) in this snapshot a baseline."""
    return connection.execute(
        _NEW_BASELINES, {"taken_at": taken_at, "min_calls": min_calls}
    ).rowcount


def find_regressions(
    connection: Connection, taken_at: datetime, factor: float, min_calls: int
) -> list[Regression]:
    """Statements of the snapshot at `taken_at` whose period mean exceeds baseline * factor."""
    rows = connection.execute(
        _PERIODS, {"taken_at": taken_at, "factor": factor, "min_calls": min_calls}
    )
    return [
        Regression(
            row.queryid, row.query, row.baseline_mean_ms, row.period_mean_ms, row.period_calls
        )
        for row in rows
    ]


def purge_old_snapshots(connection: Connection, retention_seconds: float, limit: int) -> int:
    return connection.execute(_PURGE_OLD, {"retention": retention_seconds, "limit": limit}).rowcount
