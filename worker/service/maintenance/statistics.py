"""Database statistics upkeep: ANALYZE hot tables, index health, statement snapshots."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from worker.adapters import monitoring, plan_advice
from worker.adapters.statement_stats import (
    find_regressions,
    purge_old_snapshots,
    record_baselines,
    take_snapshot,
)
from worker.service.maintenance.report import RunReport, locked
from worker.settings import WorkerSettings

log = logging.getLogger("orderq.maintenance")

ANALYZE_TASK = "analyze_hot_tables"
INDEX_HEALTH_TASK = "index_health"
SNAPSHOT_TASK = "snapshot_statements"

_ANALYZE_CANDIDATES = text(
    """
    SELECT relname, n_mod_since_analyze,
           greatest(last_analyze, last_autoanalyze) IS NULL AS never_analyzed
    FROM pg_stat_user_tables
    WHERE schemaname = current_schema() AND relname = ANY(:tables)
    ORDER BY relname
    """
)


def analyze_hot_tables(
    settings: WorkerSettings, engine: Engine, tables: tuple[str, ...] | None = None
) -> RunReport:
    """ANALYZE each hot table that changed enough since its last analyze (or never had one).

    ANALYZE takes a SHARE UPDATE EXCLUSIVE lock: reads and writes go on meanwhile.
    """
    wanted = list(tables if tables is not None else settings.analyze_tables)

    def body(report: RunReport) -> None:
        with engine.connect() as connection:
            candidates = connection.execute(_ANALYZE_CANDIDATES, {"tables": wanted}).all()
        due = [
            name
            for name, changed, never in candidates
            if never or changed >= settings.analyze_min_changed_rows
        ]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            quote = connection.dialect.identifier_preparer.quote
            for name in due:
                connection.execute(text(f"ANALYZE {quote(name)}"))
        report.set(
            analyzed=due,
            unchanged=[name for name, *_ in candidates if name not in due],
            missing=sorted(set(wanted) - {name for name, *_ in candidates}),
        )

    return locked(engine, ANALYZE_TASK, body)


def check_index_health(settings: WorkerSettings, engine: Engine) -> RunReport:
    """Report invalid, unused and duplicate indexes (read-only); warn about each problem."""

    def body(report: RunReport) -> None:
        with engine.connect() as connection:
            health = monitoring.index_health(connection)
        for problem in ("invalid", "duplicate"):
            for index in health[problem]:
                log.warning("%s index %s on %s", problem, index["index"], index["table"])
        report.set(**health)

    return locked(engine, INDEX_HEALTH_TASK, body)


_told_unavailable: set[str] = set()


def _say_once(reason: str) -> None:
    """Warn about a missing pg_stat_statements once per process, not on every run."""
    if reason not in _told_unavailable:
        _told_unavailable.add(reason)
        log.warning(reason)
    else:
        log.debug(reason)


#: regressed statements whose plan is read and advised on per run (each is one EXPLAIN)
REGRESSIONS_EXPLAINED = 5


def _advice_for(engine: Engine, regressions: list) -> dict[int, list[plan_advice.Advice]]:
    """The plan recommendations of each regressed statement ({} if none can be read)."""
    if not regressions:
        return {}
    found: dict[int, list[plan_advice.Advice]] = {}
    with engine.connect() as connection:
        rows = plan_advice.table_rows(connection)
        for regression in regressions:
            try:
                plan, _ = plan_advice.generic_plan(connection, regression.query)
            except ValueError:
                continue
            found[regression.queryid] = plan_advice.advise(plan, rows)
        connection.rollback()
    return found


def snapshot_statements(
    settings: WorkerSettings, engine: Engine, now: datetime | None = None
) -> RunReport:
    """Store a snapshot of the top statements, set baselines for new ones and flag
    statements whose mean time regressed. Skipped (said once) without pg_stat_statements."""
    taken_at = now or datetime.now(UTC)

    def body(report: RunReport) -> None:
        with engine.connect() as connection:
            reason = monitoring.statements_unavailable(connection)
        if reason is not None:
            _say_once(reason)
            report.skipped = reason
            return
        with engine.begin() as connection:
            stored = take_snapshot(connection, taken_at, settings.statement_snapshot_top)
            baselines = record_baselines(
                connection, taken_at, settings.statement_regression_min_calls
            )
            regressions = find_regressions(
                connection,
                taken_at,
                settings.statement_regression_factor,
                settings.statement_regression_min_calls,
            )
            purged = purge_old_snapshots(
                connection,
                settings.statement_snapshot_retention_days * 86_400,
                settings.maintenance_batch_size,
            )
        advice = _advice_for(engine, regressions[:REGRESSIONS_EXPLAINED])
        for regression in regressions:
            recommendations = advice.get(regression.queryid, [])
            log.warning(
                "statement regressed: %.2f ms mean over %d calls, baseline %.2f ms: %s%s",
                regression.period_mean_ms,
                regression.period_calls,
                regression.baseline_mean_ms,
                regression.query[:200],
                "".join(f"; {a.detail} -> {a.recommendation}" for a in recommendations),
            )
        report.set(
            statements=stored,
            new_baselines=baselines,
            regressions=[
                {**r.as_dict(), "advice": [a.recommendation for a in advice.get(r.queryid, [])]}
                for r in regressions
            ],
            snapshots_purged=purged,
        )

    return locked(engine, SNAPSHOT_TASK, body)
