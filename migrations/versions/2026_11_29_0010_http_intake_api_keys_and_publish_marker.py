"""HTTP intake: API keys per upstream client, and when each accepted command was published

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 12:00:00

`command_deliveries.published_at` says when a command was handed to the broker. The
HTTP intake commits a command with `published_at` NULL and its relay sets it once the
broker took the message, so "accepted but not published" (broker down, the API
process killed between commit and publish) is one small partial index away instead
of the 900 s stuck-command threshold. The column's default is `now()`: every row
written before this migration, and every row the Python publisher or a worker writes,
counts as published when written. A stable default fills existing rows without
rewriting the table (PostgreSQL stores it once, as the column's missing value).

The partial index is built CONCURRENTLY (command_deliveries grows with every
command; see 0005 for why, and for the leftover INVALID index a failed build leaves).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from orderq.migrations.concurrent_index import build_index_concurrently, drop_index_concurrently

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPUBLISHED_INDEX = "ix_command_deliveries_unpublished_created_at"


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.add_column(
        "command_deliveries",
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=True,
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("token_prefix", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "client ~ '^[a-z0-9][a-z0-9_.-]{0,31}$'", name=op.f("ck_api_keys_client_name")
        ),
        sa.CheckConstraint("length(token_sha256) = 64", name=op.f("ck_api_keys_token_sha256")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_keys_token_sha256")),
    )
    op.create_index("ix_api_keys_client", "api_keys", ["client"])
    build_index_concurrently(
        UNPUBLISHED_INDEX, "ON command_deliveries (created_at) WHERE published_at IS NULL"
    )


def downgrade() -> None:
    drop_index_concurrently(UNPUBLISHED_INDEX)
    op.drop_index("ix_api_keys_client", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_column("command_deliveries", "published_at")
