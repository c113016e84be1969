"""library loans: members, works, copies, loans, reservations

One active loan per copy and one open reservation per member and work are partial
unique indexes; lookups skip soft-deleted members and copies.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:48:46.422756
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("member_number", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("loan_limit", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended')", name=op.f("ck_members_status_allowed")
        ),
        sa.CheckConstraint("loan_limit >= 0", name=op.f("ck_members_loan_limit_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
    )
    op.create_index(
        "uq_members_member_number_live",
        "members",
        ["member_number"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "works",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("work_code", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column(
            "authors", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_works")),
        sa.UniqueConstraint("work_code", name=op.f("uq_works_work_code")),
    )
    op.create_table(
        "copies",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("work_id", sa.BigInteger(), nullable=False),
        sa.Column("barcode", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('available', 'on_loan', 'on_hold')", name=op.f("ck_copies_status_allowed")
        ),
        sa.ForeignKeyConstraint(["work_id"], ["works.id"], name=op.f("fk_copies_work_id_works")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copies")),
        sa.UniqueConstraint("barcode", name=op.f("uq_copies_barcode")),
    )
    op.create_index(
        "ix_copies_work_id_status",
        "copies",
        ["work_id", "status"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("copy_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("checked_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renewals", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("due_at > checked_out_at", name=op.f("ck_loans_due_after_checkout")),
        sa.CheckConstraint("renewals >= 0", name=op.f("ck_loans_renewals_not_negative")),
        sa.CheckConstraint(
            "returned_at IS NULL OR returned_at >= checked_out_at",
            name=op.f("ck_loans_returned_after_checkout"),
        ),
        sa.ForeignKeyConstraint(["copy_id"], ["copies.id"], name=op.f("fk_loans_copy_id_copies")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_loans_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_loans_idempotency_key")),
    )
    op.create_index(
        "ix_loans_member_id_active",
        "loans",
        ["member_id"],
        unique=False,
        postgresql_where=sa.text("returned_at IS NULL"),
    )
    op.create_index(
        "uq_loans_copy_id_active",
        "loans",
        ["copy_id"],
        unique=True,
        postgresql_where=sa.text("returned_at IS NULL"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("work_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("copy_id", sa.BigInteger(), nullable=True),
        sa.Column("ready_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status <> 'queued' OR (copy_id IS NULL AND ready_until IS NULL)",
            name=op.f("ck_reservations_queued_holds_nothing"),
        ),
        sa.CheckConstraint(
            "status <> 'ready' OR (copy_id IS NOT NULL AND ready_until IS NOT NULL)",
            name=op.f("ck_reservations_ready_holds_a_copy"),
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'ready', 'fulfilled', 'expired', 'cancelled')",
            name=op.f("ck_reservations_status_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["copy_id"], ["copies.id"], name=op.f("fk_reservations_copy_id_copies")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_reservations_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["work_id"], ["works.id"], name=op.f("fk_reservations_work_id_works")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    op.create_index(
        "ix_reservations_work_id_queue",
        "reservations",
        ["work_id", "queued_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "uq_reservations_copy_id_ready",
        "reservations",
        ["copy_id"],
        unique=True,
        postgresql_where=sa.text("status = 'ready'"),
    )
    op.create_index(
        "uq_reservations_work_id_member_id_open",
        "reservations",
        ["work_id", "member_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'ready')"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_reservations_work_id_member_id_open",
        table_name="reservations",
        postgresql_where=sa.text("status IN ('queued', 'ready')"),
    )
    op.drop_index(
        "uq_reservations_copy_id_ready",
        table_name="reservations",
        postgresql_where=sa.text("status = 'ready'"),
    )
    op.drop_index(
        "ix_reservations_work_id_queue",
        table_name="reservations",
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.drop_table("reservations")
    op.drop_index(
        "uq_loans_copy_id_active",
        table_name="loans",
        postgresql_where=sa.text("returned_at IS NULL"),
    )
    op.drop_index(
        "ix_loans_member_id_active",
        table_name="loans",
        postgresql_where=sa.text("returned_at IS NULL"),
    )
    op.drop_table("loans")
    op.drop_index(
        "ix_copies_work_id_status",
        table_name="copies",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_table("copies")
    op.drop_table("works")
    op.drop_index(
        "uq_members_member_number_live",
        table_name="members",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_table("members")
