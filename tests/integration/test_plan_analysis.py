"""`orderq db analyze`: the top statements of pg_stat_statements with their plans and
recommendations — on the embedded PostgreSQL (pg_stat_statements preloaded), and the
generic-plan reader on the configured server too (PREPARE path before PostgreSQL 16)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, pool, text

from orderq.embedded import ensure_postgres, stop
from tests.support.cli import orderq
from tests.support.embedded import clean_environment
from worker.adapters.plan_advice import analyze_top_statements, generic_plan


@pytest.fixture(scope="module")
def embedded() -> Iterator[tuple[Path, Engine]]:
    folder = Path(tempfile.mkdtemp(prefix="orderq-analyze-test-"))
    try:
        instance = ensure_postgres(folder)
        engine = create_engine(instance.url(), poolclass=pool.NullPool)
        yield folder, engine
        engine.dispose()
    finally:
        stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def workload(engine: Engine) -> None:
    """A large table, one query its index serves and one that scans it."""
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS parcels"))
        connection.execute(
            text(
                "CREATE TABLE parcels (id bigint PRIMARY KEY, depot text, note text);"
                "INSERT INTO parcels SELECT n, 'D' || n % 40, 'n' || n "
                "FROM generate_series(1, 30000) n; ANALYZE parcels"
            )
        )
        connection.execute(text("SELECT pg_stat_statements_reset()"))
    with engine.connect() as connection:
        for n in range(30):
            connection.execute(text("SELECT depot FROM parcels WHERE note = :n"), {"n": f"n{n}"})
            connection.execute(text("SELECT note FROM parcels WHERE id = :id"), {"id": n})


def test_the_scanning_statement_gets_an_index_recommendation(embedded):
    _, engine = embedded
    workload(engine)

    with engine.connect() as connection:
        analyses = {a.query: a for a in analyze_top_statements(connection, limit=20)}

    scanning = next(a for q, a in analyses.items() if "WHERE note =" in q)
    by_key = next(a for q, a in analyses.items() if "WHERE id =" in q)
    assert scanning.calls == 30
    assert [a.kind for a in scanning.advice] == ["seq_scan"]
    assert scanning.advice[0].relation == "parcels"
    assert "add an index on parcels" in scanning.advice[0].recommendation
    assert by_key.indexes == ["parcels_pkey"] and by_key.advice == []


def test_the_command_prints_it_as_json(embedded):
    folder, engine = embedded
    workload(engine)
    url = engine.url.render_as_string(hide_password=False)
    env = clean_environment(folder, DATABASE_URL=url, CELERY_BROKER_URL="redis://127.0.0.1:1/0")

    done = orderq("db", "analyze", "--json", env=env)

    assert done.returncode == 0, done.stderr
    statements = json.loads(done.stdout)["statements"]
    scanning = next(s for s in statements if "WHERE note =" in s["query"])
    assert scanning["advice"][0]["kind"] == "seq_scan"


def test_without_statement_statistics_the_command_says_why(migrated_database):
    done = orderq("db", "analyze")

    if done.returncode == 0:  # a server with pg_stat_statements loaded and created
        return
    assert done.returncode == 1
    assert "pg_stat_statements" in done.stderr


def test_generic_plans_of_normalized_statements_on_the_configured_server(engine):
    with engine.connect() as connection:
        plan, planning_ms = generic_plan(
            connection, "SELECT id FROM orders WHERE status = $1 ORDER BY created_at DESC LIMIT $2"
        )
        with pytest.raises(ValueError):
            generic_plan(connection, "VACUUM orders")
        with pytest.raises(ValueError):
            generic_plan(connection, "SELECT FROM no_such_table WHERE x = $1")
        still_usable = connection.execute(text("SELECT 1")).scalar()

    assert plan["Node Type"] == "Limit"
    assert planning_ms is not None
    assert still_usable == 1
