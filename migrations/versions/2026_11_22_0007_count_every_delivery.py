"""count every delivery of a key, apart from the attempts bounded by max_attempts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "command_deliveries",
        sa.Column("deliveries", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.execute("UPDATE command_deliveries SET deliveries = attempts WHERE deliveries < attempts")


def downgrade() -> None:
    op.drop_column("command_deliveries", "deliveries")
