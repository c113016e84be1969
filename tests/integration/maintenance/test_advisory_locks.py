"""The maintenance lock holds no snapshot while its run works on other connections."""

from __future__ import annotations

from sqlalchemy import text

from worker.adapters.advisory_locks import advisory_lock, lock_key

_HOLDER = text(
    "SELECT a.backend_xmin IS NULL, a.state FROM pg_locks l JOIN pg_stat_activity a "
    "USING (pid) WHERE l.locktype = 'advisory' AND l.granted "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = (:key & x'FFFFFFFFFFFFFFFF'::bigint)"
)


def test_the_lock_holder_pins_no_xmin_so_vacuum_and_concurrent_reindex_go_on(engine):
    """A transaction idle with a pinned snapshot would keep VACUUM from removing what
    the run deletes and make REINDEX CONCURRENTLY wait on it (the upkeep jobs)."""
    name = "test-advisory-xmin"
    with advisory_lock(engine, name) as held:
        assert held
        with engine.connect() as observer:
            rows = observer.execute(_HOLDER, {"key": lock_key(name)}).all()

    assert rows == [(True, "idle in transaction")]


def test_a_second_run_is_refused_while_the_first_holds_the_lock(engine):
    with (
        advisory_lock(engine, "test-advisory-twice") as first,
        advisory_lock(engine, "test-advisory-twice") as second,
    ):
        assert first and not second
    with advisory_lock(engine, "test-advisory-twice") as again:
        assert again
