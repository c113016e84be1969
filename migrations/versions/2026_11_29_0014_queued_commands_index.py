"""a small partial index on queued commands, for the metrics' queue depth and oldest age

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-29 12:00:00

`orderq metrics serve` counts, on every scrape, the commands accepted but not yet taken
by a worker (`state = 'queued'`) and the age of the oldest. Decided commands keep
`state = 'running'` in `command_deliveries`, so the pending-rows index holds every
command ever run; this one holds only the queued rows (a handful while workers keep
up), and a row leaves it when a worker first takes the command. Built CONCURRENTLY
(an autocommit block) like 0005: the table grows with every command.
"""

from __future__ import annotations

from collections.abc import Sequence

from orderq.migrations.concurrent_index import build_index_concurrently, drop_index_concurrently

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_command_deliveries_queued_created_at"
DEFINITION = "ON command_deliveries (created_at) WHERE state = 'queued'"


def upgrade() -> None:
    build_index_concurrently(NAME, DEFINITION)


def downgrade() -> None:
    drop_index_concurrently(NAME)
