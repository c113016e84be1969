"""Migration 0006 builds the loan sweep indexes CONCURRENTLY: loans and reservations
keep taking writes while it runs."""

from __future__ import annotations

import threading

from alembic import command
from sqlalchemy import Engine, text

from tests.integration.test_concurrent_index_migration import (  # noqa: F401 (fixture)
    alembic_config,
    index_build_waiting,
    scratch_database,
    wait_until,
)

SETUP = """
INSERT INTO works (work_code, title) VALUES ('W-MIG', 'Migration fixture');
INSERT INTO members (member_number, name, status, loan_limit)
SELECT 'M-MIG-' || g, 'Fixture', 'active', 5 FROM generate_series(1, 3) g;
INSERT INTO copies (work_id, barcode, status)
SELECT w.id, 'C-MIG-' || g, 'available' FROM works w, generate_series(1, 3) g;
INSERT INTO reservations (work_id, member_id, status, queued_at)
SELECT w.id, m.id, 'cancelled', now() - make_interval(secs => g)
FROM works w, members m, generate_series(1, 5000) g WHERE m.member_number = 'M-MIG-1';
"""
RESERVATION = (
    "INSERT INTO reservations (work_id, member_id, status, queued_at) "
    "SELECT w.id, m.id, 'queued', now() FROM works w, members m "
    "WHERE m.member_number = :member"
)
LOAN = (
    "INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at) "
    "SELECT c.id, m.id, :key, now(), now() + interval '21 days' FROM copies c, members m "
    "WHERE c.barcode = :barcode AND m.member_number = 'M-MIG-3'"
)


def write_with_lock_timeout(engine: Engine, sql: str, **params: str) -> None:
    """One committed write that refuses to wait more than a second for a table lock."""
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '1s'"))
        connection.execute(text(sql), params)


def test_migration_0006_lets_loan_and_reservation_writes_through(scratch_database):  # noqa: F811
    url, engine = scratch_database
    command.upgrade(alembic_config(url), "0005")
    with engine.begin() as connection:
        connection.execute(text(SETUP))
    # An open write on reservations keeps the concurrent build there waiting, so the
    # test can write while the build is visibly in progress.
    writer = engine.connect()
    writer.execute(text(RESERVATION), {"member": "M-MIG-1"})
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            command.upgrade(alembic_config(url), "0006")
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    migration = threading.Thread(target=migrate)
    migration.start()
    try:
        wait_until(lambda: index_build_waiting(engine, "reservations"))

        write_with_lock_timeout(engine, RESERVATION, member="M-MIG-2")
        write_with_lock_timeout(engine, LOAN, key="during-build", barcode="C-MIG-1")

        assert migration.is_alive() and index_build_waiting(engine, "reservations")
    finally:
        writer.commit()
        writer.close()
        migration.join(60)
    assert not errors and not migration.is_alive()
    with engine.connect() as connection:
        valid = connection.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(:names)"
            ),
            {"names": ["ix_reservations_ready_until", "ix_loans_due_at_unmarked"]},
        ).all()
        checks = connection.execute(
            text(
                "SELECT conname, convalidated FROM pg_constraint "
                "WHERE conname LIKE 'ck_loans_overdue_%' ORDER BY conname"
            )
        ).all()
        loans = connection.execute(
            text("SELECT count(*) FROM loans WHERE idempotency_key = 'during-build'")
        ).scalar()
    assert sorted(valid) == [
        ("ix_loans_due_at_unmarked", True),
        ("ix_reservations_ready_until", True),
    ]
    assert checks == [
        ("ck_loans_overdue_after_due", True),
        ("ck_loans_overdue_before_return", True),
    ]
    assert loans == 1
