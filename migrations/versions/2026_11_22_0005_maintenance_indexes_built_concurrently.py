"""maintenance indexes on the ledger and deliveries, built CONCURRENTLY

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 12:05:00

Both tables grow with every command, so these indexes are built CONCURRENTLY: writes
to the table go on while the index builds. CONCURRENTLY cannot run inside a
transaction, hence the autocommit blocks. A build that fails (or is interrupted)
leaves an INVALID index behind; `IF NOT EXISTS` would then skip it, so each build
drops a leftover invalid index first (`orderq db report` lists invalid indexes too).
"""

from __future__ import annotations

from collections.abc import Sequence

from orderq.migrations.concurrent_index import build_index_concurrently, drop_index_concurrently

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    # serves: the retention purge (rows claimed before the cutoff)
    "ix_command_ledger_created_at": "ON command_ledger (created_at)",
    # serves: maintenance finding accepted commands with no outcome for too long
    "ix_command_deliveries_pending_updated_at": (
        "ON command_deliveries (updated_at) WHERE state IN ('queued', 'running')"
    ),
}


def upgrade() -> None:
    for name, definition in INDEXES.items():
        build_index_concurrently(name, definition)


def downgrade() -> None:
    for name in reversed(INDEXES):
        drop_index_concurrently(name)
