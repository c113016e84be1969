"""loan maintenance: loans.overdue_at and the indexes the loan sweeps read

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 23:30:00

`loans.overdue_at` is a new nullable column without a default: adding it rewrites
nothing. Its two CHECKs are added `NOT VALID` (a short lock, no scan) and validated
afterwards in their own transactions, where the scan only takes a lock that lets
reads and writes go on.

The sweep indexes are built CONCURRENTLY (see 0005 for why, and for the leftover
INVALID index a failed build leaves behind): loans and reservations grow with every
checkout and reservation.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from orderq.migrations.concurrent_index import build_index_concurrently, drop_index_concurrently

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = {
    # marked overdue only once past due
    "ck_loans_overdue_after_due": "overdue_at IS NULL OR overdue_at > due_at",
    # ... and only while still on loan
    "ck_loans_overdue_before_return": (
        "overdue_at IS NULL OR returned_at IS NULL OR overdue_at <= returned_at"
    ),
}

INDEXES = {
    # serves: the hold-expiry sweep (ready reservations past ready_until, keyset on
    # (ready_until, id)) — worker/adapters/due_rows.py expired_holds
    "ix_reservations_ready_until": ("ON reservations (ready_until, id) WHERE status = 'ready'"),
    # serves: the overdue sweep (active, unmarked loans past due_at, keyset on
    # (due_at, id)) — worker/adapters/due_rows.py unmarked_overdue_loans
    "ix_loans_due_at_unmarked": (
        "ON loans (due_at, id) WHERE returned_at IS NULL AND overdue_at IS NULL"
    ),
}


def upgrade() -> None:
    # Fail fast instead of queueing behind a long transaction on loans (every later
    # query on the table would queue behind this ALTER).
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.add_column("loans", sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    for name, condition in CHECKS.items():
        op.execute(f"ALTER TABLE loans ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")
    with op.get_context().autocommit_block():
        for name in CHECKS:
            op.execute(f"ALTER TABLE loans VALIDATE CONSTRAINT {name}")
    for name, definition in INDEXES.items():
        build_index_concurrently(name, definition)


def downgrade() -> None:
    for name in reversed(INDEXES):
        drop_index_concurrently(name)
    for name in reversed(CHECKS):
        op.execute(f"ALTER TABLE loans DROP CONSTRAINT IF EXISTS {name}")
    op.drop_column("loans", "overdue_at")
