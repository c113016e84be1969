"""schedule claims (a beat on every host) and restore drill results

Two new tables, nothing changed on existing ones: creating a table takes no lock on
any table that traffic uses.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing here should wait on a lock; if something does, fail fast, not queue traffic.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "schedule_claims",
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=False),
        sa.Column(
            "claimed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("runs", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_ran_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("runs >= 0", name=op.f("ck_schedule_claims_runs_not_negative")),
        sa.PrimaryKeyConstraint("job", "scheduled_for", name=op.f("pk_schedule_claims")),
    )
    op.create_table(
        "restore_drills",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("backup_file", sa.Text(), nullable=False),
        sa.Column("backup_sha256", sa.Text(), nullable=True),
        sa.Column("scratch_database", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "finished_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "restored_rows",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "failed_invariants",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('passed', 'failed')", name=op.f("ck_restore_drills_status_allowed")
        ),
        sa.CheckConstraint(
            "status = 'failed' OR error IS NULL",
            name=op.f("ck_restore_drills_passed_without_error"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restore_drills")),
    )
    op.create_index("ix_restore_drills_started_at", "restore_drills", [sa.text("started_at DESC")])


def downgrade() -> None:
    op.drop_index("ix_restore_drills_started_at", table_name="restore_drills")
    op.drop_table("restore_drills")
    op.drop_table("schedule_claims")
