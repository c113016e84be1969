"""ANALYZE, index health and statement statistics on the real server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, text

from orderq.embedded.capabilities import extension_status
from tests.support.concurrency import at_once
from tests.support.database import scratch_database
from tests.support.environment import TEST_DATABASE_URL
from worker.adapters import monitoring
from worker.adapters.statement_stats import find_regressions, record_baselines
from worker.service.maintenance import statistics
from worker.service.maintenance.report import SKIPPED_LOCKED
from worker.service.maintenance.statistics import (
    analyze_hot_tables,
    check_index_health,
    snapshot_statements,
)


def autocommit(engine: Engine, *statements: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for statement in statements:
            connection.execute(text(statement))


def write_rows(engine: Engine, table: str, count: int) -> None:
    """Insert rows and make this backend publish its table statistics right away."""
    with engine.connect() as connection:
        connection.execute(text(f"INSERT INTO {table} SELECT g FROM generate_series(1, {count}) g"))
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
        connection.commit()


@pytest.fixture
def probe_table(engine) -> Iterator[str]:
    name = f"probe_analyze_{uuid.uuid4().hex[:8]}"
    # autovacuum off: its own ANALYZE would race with the one under test
    autocommit(engine, f"CREATE TABLE {name} (n int) WITH (autovacuum_enabled = off)")
    yield name
    autocommit(engine, f"DROP TABLE {name}")


def test_analyze_runs_on_changed_tables_only(engine, tuned, probe_table):
    settings = tuned(analyze_min_changed_rows=1000)
    write_rows(engine, probe_table, 2000)

    first = analyze_hot_tables(settings, engine, tables=(probe_table, "no_such_table"))
    again = analyze_hot_tables(settings, engine, tables=(probe_table,))
    write_rows(engine, probe_table, 10)
    few = analyze_hot_tables(settings, engine, tables=(probe_table,))
    write_rows(engine, probe_table, 1500)
    many = analyze_hot_tables(settings, engine, tables=(probe_table,))

    assert first.figures["analyzed"] == [probe_table]
    assert first.figures["missing"] == ["no_such_table"]
    analyzed_at = "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = :t"
    with engine.connect() as connection:
        assert connection.execute(text(analyzed_at), {"t": probe_table}).scalar() is not None
    assert again.figures["analyzed"] == [] and again.figures["unchanged"] == [probe_table]
    assert few.figures["analyzed"] == []
    assert many.figures["analyzed"] == [probe_table]


def test_concurrent_analyze_runs_do_not_both_work(engine, tuned, probe_table):
    settings = tuned(analyze_min_changed_rows=1)
    write_rows(engine, probe_table, 100)

    reports = at_once(
        lambda: analyze_hot_tables(settings, engine, tables=(probe_table,)),
        lambda: analyze_hot_tables(settings, engine, tables=(probe_table,)),
    )

    # overlapping, the second run skips; one after the other, it finds nothing new
    assert sum(probe_table in r.figures.get("analyzed", []) for r in reports) == 1
    assert all(r.skipped == SKIPPED_LOCKED for r in reports if r.skipped)


@pytest.fixture
def index_probe(engine) -> Iterator[str]:
    schema = f"probe_ix_{uuid.uuid4().hex[:8]}"
    autocommit(
        engine,
        f"CREATE SCHEMA {schema}",
        f"CREATE TABLE {schema}.items (a int, b int)",
        f"INSERT INTO {schema}.items VALUES (1, 1), (1, 1)",
        f"CREATE INDEX items_a ON {schema}.items (a)",
        f"CREATE INDEX items_a_b ON {schema}.items (a, b)",
        f"CREATE INDEX items_a_b_twin ON {schema}.items (a, b)",
        f"CREATE UNIQUE INDEX items_b_unique ON {schema}.items (b) WHERE a > 1",
    )
    # a concurrent unique build that fails on the duplicate rows leaves an INVALID index
    with pytest.raises(Exception, match="could not create unique index"):
        autocommit(engine, f"CREATE UNIQUE INDEX CONCURRENTLY items_broken ON {schema}.items (a)")
    yield schema
    autocommit(engine, f"DROP SCHEMA {schema} CASCADE")


def test_index_health_names_invalid_unused_and_duplicate_indexes(engine, settings, index_probe):
    report = check_index_health(settings, engine)
    again = check_index_health(settings, engine)

    def names(kind: str) -> set[str]:
        return {ix["index"] for ix in report.figures[kind] if ix["schema"] == index_probe}

    assert names("invalid") == {"items_broken"}
    assert names("duplicate") == {"items_a", "items_a_b_twin"}
    covered = {ix["index"]: ix["covered_by"] for ix in report.figures["duplicate"]}
    assert covered["items_a"] in {"items_a_b", "items_a_b_twin"}
    assert covered["items_a_b_twin"] == "items_a_b"
    # never scanned; the unique index is exempt (it enforces a rule), the broken one is
    # already reported as invalid
    assert names("unused") == {"items_a", "items_a_b", "items_a_b_twin"}
    assert again.figures == report.figures  # read-only: a second run sees the same


def test_without_pg_stat_statements_the_snapshot_says_so_once_and_skips(engine, settings, caplog):
    statistics._told_unavailable.clear()
    with caplog.at_level(logging.DEBUG, logger="orderq.maintenance"):
        first = snapshot_statements(settings, engine)
        second = snapshot_statements(settings, engine)

    assert first.skipped == second.skipped
    with engine.connect() as connection:
        shipped = extension_status(connection, "pg_stat_statements") != "missing"
    if shipped:  # the server has the contrib package: the fix is one statement away
        assert "pg_stat_statements is not installed in this database" in first.skipped
        assert "CREATE EXTENSION pg_stat_statements" in first.skipped
    else:  # a server without its contrib package
        assert "pg_stat_statements is not available on this PostgreSQL server" in first.skipped
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [first.skipped]
    with engine.connect() as connection:
        snapshots = (
            "SELECT count(*) FROM statement_snapshots WHERE taken_at > now() - interval '1 minute'"
        )
        assert connection.execute(text(snapshots)).scalar() == 0


@pytest.mark.requires_extension("pg_stat_statements")
def test_an_installed_but_not_preloaded_extension_is_named_as_such():
    """The local server ships pg_stat_statements but does not preload it."""
    with scratch_database(TEST_DATABASE_URL, "pgss") as scratch:
        engine = create_engine(scratch)
        try:
            with engine.connect() as connection:
                connection.execute(text("CREATE EXTENSION pg_stat_statements"))
                connection.commit()
                preloaded = connection.execute(text("SHOW shared_preload_libraries")).scalar()
                reason = monitoring.statements_unavailable(connection)
        finally:
            engine.dispose()
    if "pg_stat_statements" in preloaded:
        assert reason is None
    else:
        assert reason is not None and "installed but not loaded" in reason
        assert "shared_preload_libraries" in reason


def fill_snapshot(connection, taken_at: datetime, rows: list[tuple[int, int, float]]) -> None:
    for queryid, calls, total_ms in rows:
        connection.execute(
            text(
                "INSERT INTO statement_snapshots (taken_at, queryid, query, calls, "
                "total_exec_ms, rows) VALUES (:t, :q, :text, :c, :total, 0)"
            ),
            {
                "t": taken_at,
                "q": queryid,
                "text": f"SELECT probe_{queryid} WHERE id = $1",
                "c": calls,
                "total": total_ms,
            },
        )


def test_regressions_are_flagged_against_the_baseline_from_snapshots(engine):
    base = 10**15 + uuid.uuid4().int % 10**12  # queryids no real statement will have
    slow, steady, rare, reset = base, base + 1, base + 2, base + 3
    t0 = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(seconds=uuid.uuid4().int % 10**6)
    t1, t2 = t0 + timedelta(hours=1), t0 + timedelta(hours=2)
    with engine.begin() as connection:
        # first snapshot: every statement averages 1 ms and becomes its own baseline
        fill_snapshot(
            connection,
            t0,
            [(slow, 100, 100.0), (steady, 100, 100.0), (rare, 100, 100.0), (reset, 1000, 1000.0)],
        )
        assert record_baselines(connection, t0, min_calls=50) == 4
        fill_snapshot(
            connection,
            t1,
            [(slow, 200, 200.0), (steady, 200, 200.0), (rare, 100, 100.0), (reset, 2000, 2000.0)],
        )
        # over the last period: slow 5 ms/call (x5), steady 1.5 ms (x1.5), rare 20 ms but
        # only 2 calls, reset: counters went down (stats reset) -> 600 calls at 4 ms
        fill_snapshot(
            connection,
            t2,
            [(slow, 400, 1200.0), (steady, 400, 500.0), (rare, 102, 140.0), (reset, 600, 2400.0)],
        )

        assert record_baselines(connection, t2, min_calls=50) == 0  # baselines are kept
        flagged = find_regressions(connection, t2, factor=2.0, min_calls=50)
        at_t1 = find_regressions(connection, t1, factor=2.0, min_calls=50)
        connection.execute(
            text("DELETE FROM statement_baselines WHERE queryid BETWEEN :a AND :b"),
            {"a": base, "b": base + 3},
        )

    by_id = {r.queryid: r for r in flagged}
    assert set(by_id) == {slow, reset}
    assert by_id[slow].period_calls == 200 and by_id[slow].period_mean_ms == pytest.approx(5.0)
    assert by_id[reset].period_calls == 600 and by_id[reset].period_mean_ms == pytest.approx(4.0)
    assert by_id[slow].as_dict()["slower_by"] == 5.0
    assert at_t1 == []
