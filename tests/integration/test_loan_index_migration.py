"""Migration 0006 builds the loan sweep indexes CONCURRENTLY: loans and reservations
keep taking writes while it runs."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from tests.integration.test_concurrent_index_migration import scratch_database  # noqa: F401
from tests.support.migrations import (
    alembic_config,
    index_validity,
    upgrading_while_a_writer_holds,
    write_with_lock_timeout,
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


def test_migration_0006_lets_loan_and_reservation_writes_through(scratch_database):  # noqa: F811
    url, engine = scratch_database
    command.upgrade(alembic_config(url), "0005")
    with engine.begin() as connection:
        connection.execute(text(SETUP))
    # An open write on reservations keeps the concurrent build there waiting, so the
    # test can write while the build is visibly in progress.
    with upgrading_while_a_writer_holds(
        url, engine, "0006", "reservations", RESERVATION, member="M-MIG-1"
    ):
        write_with_lock_timeout(engine, RESERVATION, member="M-MIG-2")
        write_with_lock_timeout(engine, LOAN, key="during-build", barcode="C-MIG-1")

    valid = index_validity(engine, ["ix_reservations_ready_until", "ix_loans_due_at_unmarked"])
    with engine.connect() as connection:
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
