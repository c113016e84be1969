"""order numbers keep growing past ORD-999999

lpad() cuts a longer string to the given length, so the default
'ORD-' || lpad(nextval(...)::text, 6, '0') turned order 1,000,000 into ORD-100000 —
a duplicate of order 100,000, refused by the unique index: no order could be placed
any more. The number is now padded to at least six digits and never cut.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION next_order_number() RETURNS text LANGUAGE sql VOLATILE AS $$
            SELECT 'ORD-' || lpad(n::text, greatest(6, length(n::text)), '0')
            FROM nextval('order_number_seq') AS n
        $$
        """
    )
    op.execute("ALTER TABLE orders ALTER COLUMN order_number SET DEFAULT next_order_number()")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE orders ALTER COLUMN order_number "
        "SET DEFAULT 'ORD-' || lpad(nextval('order_number_seq')::text, 6, '0')"
    )
    op.execute("DROP FUNCTION next_order_number()")
