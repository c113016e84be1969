"""maintenance: republish counter, statement snapshots and baselines

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL 11+ adds it without rewriting the table.
    op.add_column(
        "command_deliveries",
        sa.Column("republished", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # NOT VALID + VALIDATE: the check is enforced for new rows at once, and existing
    # rows are checked without blocking writes (VALIDATE takes SHARE UPDATE EXCLUSIVE).
    op.execute(
        "ALTER TABLE command_deliveries ADD CONSTRAINT "
        "ck_command_deliveries_republished_not_negative CHECK (republished >= 0) NOT VALID"
    )
    op.execute(
        "ALTER TABLE command_deliveries VALIDATE CONSTRAINT "
        "ck_command_deliveries_republished_not_negative"
    )
    op.create_table(
        "statement_snapshots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queryid", sa.BigInteger(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("total_exec_ms", sa.Float(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("calls >= 0", name=op.f("ck_statement_snapshots_calls_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_snapshots")),
    )
    op.create_index(
        "ix_statement_snapshots_queryid_taken_at",
        "statement_snapshots",
        ["queryid", "taken_at"],
    )
    op.create_index("ix_statement_snapshots_taken_at", "statement_snapshots", ["taken_at"])
    op.create_table(
        "statement_baselines",
        sa.Column("queryid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("mean_exec_ms", sa.Float(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "mean_exec_ms >= 0", name=op.f("ck_statement_baselines_mean_not_negative")
        ),
        sa.PrimaryKeyConstraint("queryid", name=op.f("pk_statement_baselines")),
    )


def downgrade() -> None:
    op.drop_table("statement_baselines")
    op.drop_index("ix_statement_snapshots_taken_at", table_name="statement_snapshots")
    op.drop_index("ix_statement_snapshots_queryid_taken_at", table_name="statement_snapshots")
    op.drop_table("statement_snapshots")
    op.drop_constraint(
        op.f("ck_command_deliveries_republished_not_negative"), "command_deliveries", type_="check"
    )
    op.drop_column("command_deliveries", "republished")
