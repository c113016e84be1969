"""Building and dropping indexes CONCURRENTLY, for tables that grow with every command.

CONCURRENTLY lets writes go on while the index builds, and cannot run inside a
transaction, hence the autocommit block. A build that fails (or is interrupted) leaves
an INVALID index behind, which `IF NOT EXISTS` would then skip: it is dropped and
built again. In offline mode (`alembic upgrade --sql`, the migration linter) nothing
can be asked of the database, so the SQL is rendered without that check.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

_INVALID = sa.text(
    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE c.relname = :name AND NOT i.indisvalid"
)


def build_index_concurrently(name: str, definition: str) -> None:
    """`CREATE INDEX CONCURRENTLY name definition` (e.g. `ON t (c) WHERE …`), replacing
    an INVALID leftover of an earlier failed build."""
    context = op.get_context()
    with context.autocommit_block():
        if not context.as_sql and op.get_bind().execute(_INVALID, {"name": name}).scalar():
            op.execute(f"DROP INDEX CONCURRENTLY {name}")
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {definition}")


def drop_index_concurrently(name: str) -> None:
    """`DROP INDEX CONCURRENTLY IF EXISTS name`."""
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
