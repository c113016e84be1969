"""Table and index upkeep: bloat estimated, dead rows vacuumed, invalid and bloated
indexes rebuilt concurrently — each on a scratch table of its own (autovacuum off, so
nothing but the job touches it), dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy import exc as sa_exc

from tests.support.eventually import eventually
from tests.support.ids import unique
from worker.adapters.advisory_locks import advisory_lock
from worker.service.maintenance.report import SKIPPED_LOCKED
from worker.service.maintenance.upkeep import (
    REINDEX_TASK,
    estimate_bloat,
    reindex_indexes,
    vacuum_dead_rows,
)


@pytest.fixture
def parcels(engine: Engine) -> Iterator[str]:
    """A table of 60,000 rows with a B-tree index; 90 % of them deleted again."""
    table = unique("upkeep").lower().replace("-", "_")
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE {table} (id bigint PRIMARY KEY, label text) "
                "WITH (autovacuum_enabled = false)"
            )
        )
        connection.execute(text(f"CREATE INDEX {table}_label ON {table} (label)"))
        connection.execute(
            text(f"INSERT INTO {table} SELECT n, md5(n::text) FROM generate_series(1, 60000) n")
        )
    with engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {table} WHERE id % 10 <> 0"))
    yield table
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {table}"))


def stats(engine: Engine, table: str) -> dict:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables WHERE relname = :t"),
            {"t": table},
        ).one()
    return {"dead": row[0], "last_vacuum": row[1]}


def pages(engine: Engine, relation: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT pg_relation_size(CAST(:r AS regclass)) / 8192"), {"r": relation}
        ).scalar()


def test_a_table_past_the_dead_row_threshold_is_vacuumed_once(engine, tuned, parcels):
    settings = tuned(vacuum_min_dead_rows=40_000, vacuum_dead_fraction=0.5)
    eventually(lambda: stats(engine, parcels)["dead"] >= 54_000, what="dead rows counted")

    first = vacuum_dead_rows(settings, engine, tables=[parcels])
    second = vacuum_dead_rows(settings, engine, tables=[parcels])

    assert [v["table"] for v in first.figures["vacuumed"]] == [parcels]
    assert stats(engine, parcels)["last_vacuum"] is not None
    assert (
        eventually(lambda: stats(engine, parcels)["dead"], until=lambda d: d == 0, what="0 dead")
        == 0
    )
    assert second.figures["vacuumed"] == []


def test_a_table_under_the_threshold_is_left_alone(engine, tuned, parcels):
    settings = tuned(vacuum_min_dead_rows=100_000)
    eventually(lambda: stats(engine, parcels)["dead"] >= 54_000, what="dead rows counted")

    report = vacuum_dead_rows(settings, engine, tables=[parcels])

    assert report.figures["vacuumed"] == []
    assert stats(engine, parcels)["last_vacuum"] is None


def test_bloat_is_estimated_and_a_bloated_index_rebuilt_smaller(engine, tuned, parcels):
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (ANALYZE) {parcels}"))  # rows gone, pages stay
    settings = tuned(upkeep_min_bloat_bytes=64 * 1024, upkeep_bloat_fraction=0.5)
    before = pages(engine, f"{parcels}_label")

    estimated = estimate_bloat(settings, engine, tables=[parcels])
    rebuilt = reindex_indexes(settings, engine, tables=[parcels])
    again = reindex_indexes(settings, engine, tables=[parcels])

    bloated = {b["name"]: b for b in estimated.figures["bloated"]}
    assert {parcels, f"{parcels}_label", f"{parcels}_pkey"} <= set(bloated)
    assert bloated[f"{parcels}_label"]["wasted_fraction"] > 0.7
    assert set(rebuilt.figures["rebuilt"]) == {f"{parcels}_label", f"{parcels}_pkey"}
    assert pages(engine, f"{parcels}_label") < before / 4
    assert again.figures["rebuilt"] == []


def test_an_invalid_index_is_rebuilt_and_a_reindex_leftover_dropped(engine, tuned, parcels):
    index = f"{parcels}_label_unique"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"INSERT INTO {parcels} VALUES (-1, 'twin'), (-2, 'twin')"))
        with pytest.raises(sa_exc.IntegrityError):  # leaves the index behind, INVALID
            connection.execute(
                text(f"CREATE UNIQUE INDEX CONCURRENTLY {index} ON {parcels} (label)")
            )
        connection.execute(text(f"CREATE INDEX {parcels}_id_ccnew ON {parcels} (id)"))
        connection.execute(
            text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = CAST(:i AS regclass)"),
            {"i": f"{parcels}_id_ccnew"},
        )  # what a REINDEX CONCURRENTLY killed half-way leaves
        connection.execute(text(f"DELETE FROM {parcels} WHERE id = -2"))
    settings = tuned(upkeep_min_bloat_bytes=10**12)  # invalid ones only

    report = reindex_indexes(settings, engine, tables=[parcels])

    assert report.figures["rebuilt"] == [index]
    assert report.figures["dropped_leftovers"] == [f"{parcels}_id_ccnew"]
    with engine.connect() as connection:
        valid = connection.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
                "ON c.oid = i.indexrelid WHERE i.indrelid = CAST(:t AS regclass)"
            ),
            {"t": parcels},
        ).all()
    assert dict(valid) == {f"{parcels}_pkey": True, f"{parcels}_label": True, index: True}


def test_an_overlapping_run_skips(engine, tuned, parcels):
    with advisory_lock(engine, REINDEX_TASK) as held:
        assert held
        report = reindex_indexes(tuned(), engine, tables=[parcels])
    assert report.skipped == SKIPPED_LOCKED
