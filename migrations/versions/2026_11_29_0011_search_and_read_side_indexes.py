"""read side: search (full text + trigrams, accents folded), contacts, customers,
listing indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 12:00:00

- Extensions `pg_trgm` and `unaccent` (both *trusted*: the database owner may create
  them; the server needs PostgreSQL's contrib package — the embedded server ships it).
- `orderq_fold(text)`: lower(unaccent(text)) declared IMMUTABLE, so generated columns
  and index expressions may use it. unaccent() itself is only STABLE (its dictionary
  could change); the wrapper names the dictionary explicitly and has a SQL-standard
  body, resolved once at CREATE time, so no search_path can change what it calls. If
  the unaccent rules are ever edited, REINDEX the indexes that use it.
- `works.search_vector`, the weighted tsvector (title A, authors B), kept by a trigger
  from `orderq_work_search_vector(title, authors)`. Not `GENERATED ALWAYS … STORED`:
  adding a stored generated column rewrites `works` under an ACCESS EXCLUSIVE lock
  (about a second per 10^5 works, every loan command waiting), which the migration
  linter refuses. The column is added empty (no rewrite), the trigger fills it on every
  insert and on updates of title or authors, and existing rows are backfilled in
  batches of short transactions. Every other change here is a new nullable column or a
  CONCURRENTLY index build.
- `members.email/phone/phone_digits`, `works.deleted_at` (soft delete: search skips
  withdrawn works through the partial indexes).
- `customers`: one row per `customer_ref` that placed an order, with optional contact
  details.
- Listing indexes: a customer's orders, a member's loans, a product's movements (which
  replaces ix_stock_movements_product_id: the new index leads with product_id too).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from orderq.migrations.concurrent_index import build_index_concurrently, drop_index_concurrently
from sqlalchemy.dialects.postgresql import TSVECTOR

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXTENSIONS = ("pg_trgm", "unaccent")

FUNCTIONS = {
    "orderq_fold(value text)": (
        "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
        "RETURN lower(unaccent('unaccent'::regdictionary, value))"
    ),
    "orderq_join(parts text[])": (
        "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
        "RETURN array_to_string(parts, ' ')"
    ),
    "orderq_work_search_vector(title text, authors text[])": (
        "RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "RETURN setweight(to_tsvector('english'::regconfig, orderq_fold(title)), 'A') || "
        "setweight(to_tsvector('english'::regconfig, orderq_fold(orderq_join(authors))), 'B')"
    ),
    "orderq_works_search_vector_trigger()": (
        "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "NEW.search_vector := orderq_work_search_vector(NEW.title, NEW.authors); "
        "RETURN NEW; END $$"
    ),
    "orderq_work_text(title text, authors text[])": (
        "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "RETURN orderq_fold(coalesce(title, '') || ' ' || coalesce(orderq_join(authors), ''))"
    ),
}


# Search GIN indexes write each new entry at once instead of queueing it in a pending
# list that every search must scan until VACUUM merges it (up to 4 MB by default: tens
# of milliseconds per search after a bulk load). Inserts into these tables are rare.
NO_PENDING_LIST = "WITH (fastupdate = off)"

CHECKS = {"ck_members_phone_digits_only": ("members", "phone_digits ~ '^[0-9]+$'")}

INDEXES = {
    # works: search, live rows only
    "ix_works_search_vector": (
        f"ON works USING gin (search_vector) {NO_PENDING_LIST} WHERE deleted_at IS NULL"
    ),
    "ix_works_search_text_trgm": (
        "ON works USING gin (orderq_work_text(title, authors) gin_trgm_ops) "
        f"{NO_PENDING_LIST} WHERE deleted_at IS NULL"
    ),
    # members: search by name, e-mail, phone; live rows only
    "ix_members_name_trgm": (
        f"ON members USING gin (orderq_fold(name) gin_trgm_ops) {NO_PENDING_LIST} "
        "WHERE deleted_at IS NULL"
    ),
    "ix_members_email": "ON members (lower(email) text_pattern_ops) WHERE deleted_at IS NULL",
    "ix_members_phone_digits": (
        "ON members (phone_digits text_pattern_ops) WHERE deleted_at IS NULL"
    ),
    # products: SKU prefix, name
    "ix_products_sku_pattern": "ON products (sku text_pattern_ops)",
    "ix_products_name_trgm": (
        f"ON products USING gin (orderq_fold(name) gin_trgm_ops) {NO_PENDING_LIST}"
    ),
    # listings (keyset pages)
    "ix_orders_customer_ref_created_at": ("ON orders (customer_ref, created_at DESC, id DESC)"),
    "ix_loans_member_id_checked_out_at": "ON loans (member_id, checked_out_at DESC, id DESC)",
    "ix_stock_movements_product_id_created_at": (
        "ON stock_movements (product_id, created_at DESC, id DESC)"
    ),
}
REPLACED = {"ix_stock_movements_product_id": "ON stock_movements (product_id)"}

_SHIPPED = "SELECT name FROM pg_available_extensions WHERE name = ANY(:names)"


def _require_extensions() -> None:
    if op.get_context().as_sql:  # offline SQL (the migration linter): nothing to ask
        return
    shipped = {
        row[0] for row in op.get_bind().execute(sa.text(_SHIPPED), {"names": list(EXTENSIONS)})
    }
    missing = [name for name in EXTENSIONS if name not in shipped]
    if missing:
        raise RuntimeError(
            f"search needs the PostgreSQL extensions {', '.join(missing)}, which this server "
            "does not ship: install PostgreSQL's contrib package on the server (Debian/Ubuntu: "
            "postgresql-contrib; the official Docker image and the embedded server have it)"
        )


_BACKFILL = (
    "UPDATE works SET search_vector = orderq_work_search_vector(title, authors) "
    "WHERE id IN (SELECT id FROM works WHERE search_vector IS NULL LIMIT {limit} "
    "FOR UPDATE SKIP LOCKED)"
)


def _backfill_search_vectors(batch: int = 5000) -> None:
    """Fill `search_vector` for the rows that existed before the trigger, a batch per
    (autocommitted) statement, so no lock is held for long."""
    if op.get_context().as_sql:  # offline SQL: one statement shows the shape
        op.execute(_BACKFILL.format(limit=batch))
        return
    while op.get_bind().execute(sa.text(_BACKFILL.format(limit=batch))).rowcount:
        pass


def upgrade() -> None:
    _require_extensions()
    for name in EXTENSIONS:
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {signature} {body}")
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_ref", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("phone_digits", sa.Text(), nullable=True),
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
            "phone_digits ~ '^[0-9]+$'", name=op.f("ck_customers_phone_digits_only")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("customer_ref", name=op.f("uq_customers_customer_ref")),
    )
    # a new, empty table: plain index builds
    op.execute(
        "CREATE INDEX ix_customers_name_trgm ON customers "
        f"USING gin (orderq_fold(name) gin_trgm_ops) {NO_PENDING_LIST}"
    )
    op.execute("CREATE INDEX ix_customers_email ON customers (lower(email) text_pattern_ops)")
    op.execute(
        "CREATE INDEX ix_customers_phone_digits ON customers (phone_digits text_pattern_ops)"
    )
    for column in ("email", "phone", "phone_digits"):
        op.add_column("members", sa.Column(column, sa.Text(), nullable=True))
    for name, (table, condition) in CHECKS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")
    op.add_column("works", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("works", sa.Column("search_vector", TSVECTOR(), nullable=True))
    op.execute(
        "CREATE TRIGGER trg_works_search_vector BEFORE INSERT OR UPDATE OF title, authors "
        "ON works FOR EACH ROW EXECUTE FUNCTION orderq_works_search_vector_trigger()"
    )
    with op.get_context().autocommit_block():
        for name, (table, _) in CHECKS.items():
            op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
        _backfill_search_vectors()
    for name, definition in INDEXES.items():
        build_index_concurrently(name, definition)
    for name in REPLACED:
        drop_index_concurrently(name)


def downgrade() -> None:
    for name, definition in REPLACED.items():
        build_index_concurrently(name, definition)
    for name in reversed(INDEXES):
        drop_index_concurrently(name)
    op.execute("DROP TRIGGER IF EXISTS trg_works_search_vector ON works")
    op.drop_column("works", "search_vector")
    op.drop_column("works", "deleted_at")
    for name, (table, _) in CHECKS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
    for column in ("phone_digits", "phone", "email"):
        op.drop_column("members", column)
    op.drop_table("customers")
    for signature in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    # the extensions stay: other objects of the database may use them
