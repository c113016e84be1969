"""The schema as SQLAlchemy tables: the single declared truth the migrations must match.

Constraint names follow one convention so migrations and error messages can name
them. Each index says which query it serves.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Sequence,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated_at() -> Column:
    return Column(
        "updated_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        onupdate=func.now(),
    )


def _version() -> Column:
    return Column("version", Integer, nullable=False, server_default=text("1"))


# -- the command ledger: one row per idempotency key that reached an outcome ----------------

LEDGER_STATUSES = ("processing", "succeeded", "rejected")

command_ledger = Table(
    "command_ledger",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("command_type", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    # 'processing' only exists inside the claiming transaction; committed rows are final.
    Column("status", Text, nullable=False),
    Column("result", JSONB),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, server_default=text("1")),
    _created_at(),
    Column("completed_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {LEDGER_STATUSES}", name="status_allowed"),
    CheckConstraint("(status = 'rejected') = (reason IS NOT NULL)", name="reason_iff_rejected"),
    CheckConstraint("length(fingerprint) = 64", name="fingerprint_sha256"),
    CheckConstraint("attempts >= 1", name="attempts_positive"),
)

# -- deliveries: every command the system has heard of, and how often it was tried ----------

DELIVERY_STATES = ("queued", "running", "failed", "discarded")

command_deliveries = Table(
    "command_deliveries",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("command_type", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("state", Text, nullable=False, server_default=text("'queued'")),
    # Counted in its own committed statement at the start of every delivery, so a
    # message that kills its worker still uses up attempts.
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("discard_reason", Text),
    _created_at(),
    _updated_at(),
    # dead letters: when the command was given up on, and what an operator did about it
    Column("failed_at", DateTime(timezone=True)),
    Column("discarded_at", DateTime(timezone=True)),
    Column("discarded_by", Text),
    Column("replays", Integer, nullable=False, server_default=text("0")),
    CheckConstraint(f"state IN {DELIVERY_STATES}", name="state_allowed"),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    CheckConstraint("replays >= 0", name="replays_not_negative"),
    CheckConstraint(
        "state NOT IN ('failed', 'discarded') OR failed_at IS NOT NULL", name="failed_at_set"
    ),
    CheckConstraint(
        "state <> 'discarded' OR (discarded_at IS NOT NULL AND discard_reason IS NOT NULL)",
        name="discard_audited",
    ),
    # serves: `orderq dead-letters list` (newest first per state); skips the live rows
    Index(
        "ix_command_deliveries_dead_letters",
        "state",
        text("failed_at DESC"),
        "idempotency_key",
        postgresql_where=text("state IN ('failed', 'discarded')"),
    ),
)

# -- catalogue and stock ----------------------------------------------------------------

products = Table(
    "products",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("sku", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("price_cents", BigInteger, nullable=False),
    _version(),
    _created_at(),
    _updated_at(),
    CheckConstraint("price_cents >= 0", name="price_not_negative"),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("product_id", BigInteger, ForeignKey("products.id"), primary_key=True),
    Column("on_hand", Integer, nullable=False, server_default=text("0")),
    Column("reserved", Integer, nullable=False, server_default=text("0")),
    _updated_at(),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
)

# -- orders -----------------------------------------------------------------------------

ORDER_STATUSES = ("placed", "paid", "shipped", "cancelled")

order_number_seq = Sequence("order_number_seq", metadata=metadata)

orders = Table(
    "orders",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "order_number",
        Text,
        nullable=False,
        unique=True,  # serves: look up an order by number (pay, ship, cancel, status)
        server_default=text("'ORD-' || lpad(nextval('order_number_seq')::text, 6, '0')"),
    ),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("customer_ref", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    _version(),
    _created_at(),
    _updated_at(),
    CheckConstraint(f"status IN {ORDER_STATUSES}", name="status_allowed"),
    CheckConstraint("total_cents >= 0", name="total_not_negative"),
    # serves: the reporting query (orders in a status, newest first, keyset pages)
    Index("ix_orders_status_created_at", "status", text("created_at DESC"), text("id DESC")),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("order_id", BigInteger, ForeignKey("orders.id"), nullable=False),
    Column("product_id", BigInteger, ForeignKey("products.id"), nullable=False),
    Column("sku", Text, nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
    Column("line_total_cents", BigInteger, nullable=False),
    # serves: loading an order's lines (ship, cancel) — order_id leads the index
    UniqueConstraint("order_id", "product_id"),
    CheckConstraint("qty > 0", name="qty_positive"),
    CheckConstraint("unit_price_cents >= 0", name="unit_price_not_negative"),
    CheckConstraint("line_total_cents = qty * unit_price_cents", name="line_total_consistent"),
)

MOVEMENT_REASONS = ("restock", "reserve", "release", "ship")

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("product_id", BigInteger, ForeignKey("products.id"), nullable=False),
    Column("order_id", BigInteger, ForeignKey("orders.id")),
    Column("on_hand_delta", Integer, nullable=False),
    Column("reserved_delta", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("command_key", Text, nullable=False),
    _created_at(),
    CheckConstraint(f"reason IN {MOVEMENT_REASONS}", name="reason_allowed"),
    CheckConstraint("on_hand_delta <> 0 OR reserved_delta <> 0", name="moves_something"),
    # serves: reconciling a product's stock with the sum of its movements
    Index("ix_stock_movements_product_id", "product_id"),
    # serves: an order's stock history (audit, cancel/ship checks)
    Index(
        "ix_stock_movements_order_id",
        "order_id",
        postgresql_where=text("order_id IS NOT NULL"),
    ),
)
