"""the trace context of HTTP-accepted commands, and operator API keys

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-29 18:00:00

`command_deliveries.trace_context` keeps the W3C trace context (`traceparent`,
`tracestate`) of the HTTP request that accepted a command, when that request was
traced. The command is published after the request's commit, by the API process's
relay thread or by the maintenance re-publisher — outside the request — and both
publish inside this stored context, so the publish span, the worker's task span and
the command's transaction continue the request's trace. NULL when tracing is off,
and for every command published straight to the broker (its publish is the trace's
start). A nullable column without a default: a catalog change, no table rewrite.

`api_keys.operator` marks the keys that may read operator data over HTTP (the
ledger listing across every client, every client's idempotency keys in stock
movements). A constant default: existing keys stay client keys, no table rewrite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.add_column(
        "command_deliveries",
        sa.Column("trace_context", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "api_keys",
        sa.Column("operator", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.drop_column("api_keys", "operator")
    op.drop_column("command_deliveries", "trace_context")
