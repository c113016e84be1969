"""dead letters on command deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:48:53.914368

A command that ends `failed` stays in `command_deliveries` as a dead letter an
operator can list, replay or discard: when it failed, who discarded it and why, how
often it was replayed. Rows already failed or discarded are backfilled so the new
CHECK constraints hold for them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "command_deliveries"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(TABLE, sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(TABLE, sa.Column("discarded_by", sa.Text(), nullable=True))
    op.add_column(
        TABLE, sa.Column("replays", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.execute(
        "UPDATE command_deliveries SET failed_at = updated_at "
        "WHERE state IN ('failed', 'discarded')"
    )
    op.execute(
        "UPDATE command_deliveries SET discarded_at = updated_at, "
        "discard_reason = coalesce(discard_reason, '(no reason recorded)') "
        "WHERE state = 'discarded'"
    )
    op.create_check_constraint(
        op.f("ck_command_deliveries_replays_not_negative"), TABLE, "replays >= 0"
    )
    op.create_check_constraint(
        op.f("ck_command_deliveries_failed_at_set"),
        TABLE,
        "state NOT IN ('failed', 'discarded') OR failed_at IS NOT NULL",
    )
    op.create_check_constraint(
        op.f("ck_command_deliveries_discard_audited"),
        TABLE,
        "state <> 'discarded' OR (discarded_at IS NOT NULL AND discard_reason IS NOT NULL)",
    )
    op.create_index(
        "ix_command_deliveries_dead_letters",
        TABLE,
        ["state", sa.literal_column("failed_at DESC"), "idempotency_key"],
        unique=False,
        postgresql_where=sa.text("state IN ('failed', 'discarded')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_command_deliveries_dead_letters",
        table_name=TABLE,
        postgresql_where=sa.text("state IN ('failed', 'discarded')"),
    )
    op.drop_constraint(op.f("ck_command_deliveries_discard_audited"), TABLE, type_="check")
    op.drop_constraint(op.f("ck_command_deliveries_failed_at_set"), TABLE, type_="check")
    op.drop_constraint(op.f("ck_command_deliveries_replays_not_negative"), TABLE, type_="check")
    op.drop_column(TABLE, "replays")
    op.drop_column(TABLE, "discarded_by")
    op.drop_column(TABLE, "discarded_at")
    op.drop_column(TABLE, "failed_at")
