"""quarantine for broker messages the guard refuses; refused reuses of a key

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

`quarantined_messages` keeps every message the worker's raw-message guard refused
(bounded headers, properties and body, the reason, broker and queue, when), one row per
message as sent, for operators to list, show, discard or replay.

`command_key_reuses` keeps, per key, the last delivery refused because it reused the
key with a different payload (`idempotency_key_reused`), so a producer looking the key
up sees the refusal next to the key's first outcome.

Both are new tables: nothing existing is rewritten or locked.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the vocabularies as of this revision
STATES = "'quarantined', 'replayed', 'discarded'"
PROBLEMS = (
    "'unreadable', 'content_type', 'encoding', 'too_large', 'json', 'too_deep', 'text', "
    "'shape', 'header', 'task', 'schedule', 'time_limit', 'expired', 'refused'"
)


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    # new tables only; the guard the migration linter asks for anyway
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.create_table(
        "command_key_reuses",
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("command_type", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("refusals", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "first_refused_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.Column(
            "last_refused_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.CheckConstraint(
            "length(fingerprint) = 64", name=op.f("ck_command_key_reuses_fingerprint_sha256")
        ),
        sa.CheckConstraint("refusals >= 1", name=op.f("ck_command_key_reuses_refusals_positive")),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_command_key_reuses")),
    )
    op.create_table(
        "quarantined_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default=sa.text("'quarantined'"), nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("rejection", sa.Text(), nullable=True),
        sa.Column("task_name", sa.Text(), nullable=True),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("broker", sa.Text(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.Column("content_encoding", sa.Text(), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("properties", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("deliveries", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "first_seen_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discarded_by", sa.Text(), nullable=True),
        sa.Column("discard_reason", sa.Text(), nullable=True),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replayed_by", sa.Text(), nullable=True),
        sa.Column("replayed_key", sa.Text(), nullable=True),
        sa.CheckConstraint(
            f"state IN ({STATES})", name=op.f("ck_quarantined_messages_state_allowed")
        ),
        sa.CheckConstraint(
            f"problem IN ({PROBLEMS})", name=op.f("ck_quarantined_messages_problem_allowed")
        ),
        sa.CheckConstraint(
            "deliveries >= 1", name=op.f("ck_quarantined_messages_deliveries_positive")
        ),
        sa.CheckConstraint(
            "octet_length(body) <= body_size",
            name=op.f("ck_quarantined_messages_body_within_size"),
        ),
        sa.CheckConstraint(
            "(idempotency_key IS NULL) = (rejection IS NULL)",
            name=op.f("ck_quarantined_messages_rejection_iff_key"),
        ),
        sa.CheckConstraint(
            "state <> 'discarded' OR (discarded_at IS NOT NULL AND discard_reason IS NOT NULL)",
            name=op.f("ck_quarantined_messages_discard_audited"),
        ),
        sa.CheckConstraint(
            "state <> 'replayed' OR (replayed_at IS NOT NULL AND replayed_key IS NOT NULL)",
            name=op.f("ck_quarantined_messages_replay_audited"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_messages")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_quarantined_messages_fingerprint")),
    )
    op.create_index(
        "ix_quarantined_messages_state_last_seen_at",
        "quarantined_messages",
        ["state", sa.literal_column("last_seen_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_quarantined_messages_last_seen_at",
        "quarantined_messages",
        ["last_seen_at"],
        unique=False,
    )
    op.create_index(
        "ix_quarantined_messages_idempotency_key",
        "quarantined_messages",
        ["idempotency_key"],
        unique=False,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_quarantined_messages_idempotency_key",
        table_name="quarantined_messages",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_index("ix_quarantined_messages_last_seen_at", table_name="quarantined_messages")
    op.drop_index("ix_quarantined_messages_state_last_seen_at", table_name="quarantined_messages")
    op.drop_table("quarantined_messages")
    op.drop_table("command_key_reuses")
