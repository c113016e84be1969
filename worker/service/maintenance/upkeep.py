"""Table and index upkeep jobs: bloat estimates, VACUUM (ANALYZE) of tables past a
dead-row threshold, REINDEX CONCURRENTLY of invalid or bloated indexes.

Like every maintenance job: under the job's advisory lock (overlapping runs skip),
bounded per run (a few tables or indexes; the next run takes the rest), idempotent
(a second run finds nothing left to do). VACUUM and REINDEX CONCURRENTLY cannot run in
a transaction block and may take minutes on a big table: they run on an autocommit
connection whose statement timeout is lifted for the statement (the lock timeout
stays, so a run never queues behind a long lock; it fails and the next run retries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from worker.adapters import upkeep
from worker.service.maintenance.report import RunReport, locked
from worker.settings import WorkerSettings

log = logging.getLogger("orderq.maintenance")

BLOAT_TASK = "estimate_bloat"
VACUUM_TASK = "vacuum_dead_rows"
REINDEX_TASK = "reindex_indexes"


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("SET statement_timeout = 0"))
        try:
            yield connection
        finally:
            connection.execute(text("RESET statement_timeout"))


def _attempt(action: Callable[[], None], what: str, report: RunReport) -> bool:
    """Run one upkeep statement; a failure (lock timeout, a concurrent build) is
    reported and left to the next run instead of failing the others."""
    try:
        action()
        return True
    except sa_exc.DBAPIError as error:
        problem = " ".join(str(error.orig).split())[:200]
        log.warning("%s failed: %s", what, problem)
        report.figures.setdefault("failed", []).append({"what": what, "error": problem})
        return False


def estimate_bloat(
    settings: WorkerSettings, engine: Engine, tables: list[str] | None = None
) -> RunReport:
    """Report tables and B-tree indexes whose estimated waste is past the threshold
    (read-only; the reindex job acts on the indexes)."""

    def body(report: RunReport) -> None:
        with engine.connect() as connection:
            estimates = upkeep.estimate_bloat(connection, tables)
        bloated = [b for b in estimates if _is_bloated(b, settings)]
        for item in bloated:
            log.warning(
                "%s %s is ~%.0f%% bloat (%d of %d bytes)",
                item.kind,
                item.name,
                100 * item.wasted_fraction,
                item.wasted_bytes,
                item.bytes,
            )
        report.set(
            bloated=[b.as_dict() for b in bloated],
            estimated=len(estimates),
            wasted_bytes=sum(b.wasted_bytes for b in estimates),
        )

    return locked(engine, BLOAT_TASK, body)


def _is_bloated(item: upkeep.Bloat, settings: WorkerSettings) -> bool:
    return (
        item.bytes >= settings.upkeep_min_bloat_bytes
        and item.wasted_fraction >= settings.upkeep_bloat_fraction
    )


def vacuum_dead_rows(
    settings: WorkerSettings, engine: Engine, tables: list[str] | None = None
) -> RunReport:
    """VACUUM (ANALYZE) the tables with the most dead rows past the threshold (at most
    `upkeep_max_tables_per_run` per run)."""

    def body(report: RunReport) -> None:
        with engine.connect() as connection:
            due = upkeep.tables_with_dead_rows(
                connection,
                settings.vacuum_min_dead_rows,
                settings.vacuum_dead_fraction,
                settings.upkeep_max_tables_per_run,
                tables,
            )
        vacuumed = []
        with _autocommit(engine) as connection:
            for item in due:
                table = item["table"]
                if _attempt(
                    lambda t=table: upkeep.vacuum_analyze(connection, t), f"VACUUM {table}", report
                ):
                    vacuumed.append(item)
        report.set(vacuumed=vacuumed)

    return locked(engine, VACUUM_TASK, body)


def reindex_indexes(
    settings: WorkerSettings, engine: Engine, tables: list[str] | None = None
) -> RunReport:
    """Rebuild invalid indexes (a failed CREATE INDEX CONCURRENTLY) and B-tree indexes
    estimated past the bloat threshold, CONCURRENTLY; drop the leftovers of a failed
    REINDEX CONCURRENTLY. At most `upkeep_max_indexes_per_run` rebuilds per run."""

    def body(report: RunReport) -> None:
        with engine.connect() as connection:
            invalid = upkeep.invalid_indexes(connection, tables)
            bloated = [
                b
                for b in upkeep.estimate_bloat(connection, tables)
                if b.kind == "index" and _is_bloated(b, settings)
            ]
        leftovers = [index for _, index in invalid if upkeep.is_reindex_leftover(index)]
        rebuild = [index for _, index in invalid if not upkeep.is_reindex_leftover(index)]
        rebuild += [b.name for b in bloated if b.name not in rebuild]
        rebuild = rebuild[: settings.upkeep_max_indexes_per_run]
        dropped, rebuilt = [], []
        with _autocommit(engine) as connection:
            for index in leftovers:
                if _attempt(
                    lambda i=index: upkeep.drop_concurrently(connection, i),
                    f"DROP INDEX {index}",
                    report,
                ):
                    dropped.append(index)
            for index in rebuild:
                if _attempt(
                    lambda i=index: upkeep.reindex_concurrently(connection, i),
                    f"REINDEX {index}",
                    report,
                ):
                    rebuilt.append(index)
        report.set(
            rebuilt=rebuilt, dropped_leftovers=dropped, bloated=[b.as_dict() for b in bloated]
        )

    return locked(engine, REINDEX_TASK, body)
