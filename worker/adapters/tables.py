"""The schema as SQLAlchemy tables: the single declared truth the migrations must match.

Constraint names follow one convention so migrations and error messages can name
them. Each index says which query it serves.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from producers.command_log import DEAD, PENDING, DeliveryState, LedgerStatus, sql_values
from worker.adapters.envelope import Problem
from worker.adapters.quarantine import QuarantineState
from worker.domain.loans import (
    OPEN_RESERVATION_STATUSES,
    CopyStatus,
    MemberStatus,
    ReservationStatus,
)
from worker.domain.orders import MovementReason, OrderStatus

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


def one_of(column: str, values: Iterable[str]) -> str:
    """`column IN ('a', 'b')` for a CHECK or an index predicate, from a vocabulary."""
    return f"{column} IN ({sql_values(values)})"


def _version() -> Column:
    return Column("version", Integer, nullable=False, server_default=text("1"))


# -- the command ledger: one row per idempotency key that reached an outcome ----------------


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
    # serves: the retention purge (rows claimed before the cutoff, oldest first)
    Index("ix_command_ledger_created_at", "created_at"),
    CheckConstraint(one_of("status", LedgerStatus), name="status_allowed"),
    CheckConstraint(
        f"(status = '{LedgerStatus.REJECTED}') = (reason IS NOT NULL)", name="reason_iff_rejected"
    ),
    CheckConstraint("length(fingerprint) = 64", name="fingerprint_sha256"),
    CheckConstraint("attempts >= 1", name="attempts_positive"),
)

# -- deliveries: every command the system has heard of, and how often it was tried ----------


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
    # every message a worker took for this key, duplicates of a decided key included
    Column("deliveries", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("discard_reason", Text),
    # how often maintenance re-sent this command because no outcome came (bounded)
    Column("republished", Integer, nullable=False, server_default=text("0")),
    _created_at(),
    _updated_at(),
    # dead letters: when the command was given up on, and what an operator did about it
    Column("failed_at", DateTime(timezone=True)),
    Column("discarded_at", DateTime(timezone=True)),
    Column("discarded_by", Text),
    Column("replays", Integer, nullable=False, server_default=text("0")),
    # When the command was handed to the broker. NULL only for a command the HTTP
    # intake committed and its relay has not published yet (orderq/http/relay.py).
    Column("published_at", DateTime(timezone=True), server_default=func.now()),
    # The W3C trace context (traceparent, tracestate) of the traced HTTP request that
    # accepted the command: its relay publishes inside it, so the trace goes on.
    Column("trace_context", JSONB),
    CheckConstraint(one_of("state", DeliveryState), name="state_allowed"),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    CheckConstraint("republished >= 0", name="republished_not_negative"),
    # serves: maintenance finding commands accepted long ago with no outcome yet
    Index(
        "ix_command_deliveries_pending_updated_at",
        "updated_at",
        postgresql_where=text(one_of("state", PENDING)),
    ),
    CheckConstraint("replays >= 0", name="replays_not_negative"),
    CheckConstraint(
        f"state NOT IN ({sql_values(DEAD)}) OR failed_at IS NOT NULL", name="failed_at_set"
    ),
    CheckConstraint(
        f"state <> '{DeliveryState.DISCARDED}' "
        "OR (discarded_at IS NOT NULL AND discard_reason IS NOT NULL)",
        name="discard_audited",
    ),
    # serves: `orderq dead-letters list` (newest first per state); skips the live rows
    Index(
        "ix_command_deliveries_dead_letters",
        "state",
        text("failed_at DESC"),
        "idempotency_key",
        postgresql_where=text(one_of("state", DEAD)),
    ),
    # serves: the HTTP relay and maintenance finding accepted commands not yet
    # published (oldest first); empty while every broker is up
    Index(
        "ix_command_deliveries_unpublished_created_at",
        "created_at",
        postgresql_where=text("published_at IS NULL"),
    ),
    # serves: the metrics' queue depth and oldest queued command, on every scrape (only
    # the commands no worker has taken yet; decided ones stay `running`)
    Index(
        "ix_command_deliveries_queued_created_at",
        "created_at",
        postgresql_where=text(f"state = '{DeliveryState.QUEUED}'"),
    ),
)

# -- API keys of the HTTP service: one row per token, stored as its SHA-256 -----------------

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # the upstream client the token speaks for; its idempotency keys are scoped to it
    Column("client", Text, nullable=False),
    # the token's first characters, to tell keys apart in `orderq api-keys list`
    Column("token_prefix", Text, nullable=False),
    # serves: authenticating a request (one lookup by the token's hash)
    Column("token_sha256", Text, nullable=False, unique=True),
    _created_at(),
    Column("revoked_at", DateTime(timezone=True)),
    # may read operator data over HTTP (the ledger of every client)
    Column("operator", Boolean, nullable=False, server_default=text("false")),
    # the same rule as orderq/http/api_keys.py CLIENT_NAME
    CheckConstraint("client ~ '^[a-z0-9][a-z0-9_.-]{0,31}$'", name="client_name"),
    CheckConstraint("length(token_sha256) = 64", name="token_sha256"),
    # serves: `orderq api-keys list --client NAME`
    Index("ix_api_keys_client", "client"),
)

# -- refused reuses of a key: visible to producers through the outcome lookup -------------

command_key_reuses = Table(
    "command_key_reuses",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    # the last refused delivery: its command type and payload fingerprint
    Column("command_type", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("refusals", Integer, nullable=False, server_default=text("1")),
    Column("first_refused_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_refused_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("length(fingerprint) = 64", name="fingerprint_sha256"),
    CheckConstraint("refusals >= 1", name="refusals_positive"),
)

# -- the quarantine: broker messages the guard refused (worker/adapters/quarantine.py) ------

quarantined_messages = Table(
    "quarantined_messages",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # the message as sent (what the broker changes on a redelivery left out): a
    # redelivery counts on the same row
    Column("fingerprint", Text, nullable=False, unique=True),
    Column("state", Text, nullable=False, server_default=text(f"'{QuarantineState.QUARANTINED}'")),
    Column("problem", Text, nullable=False),
    Column("reason", Text, nullable=False),
    # a usable key the message carried, and the rejection stored under it (if undecided)
    Column("idempotency_key", Text),
    Column("rejection", Text),
    Column("task_name", Text),
    Column("task_id", Text),
    Column("broker", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("content_type", Text),
    Column("content_encoding", Text),
    Column("headers", JSONB, nullable=False),
    Column("properties", JSONB, nullable=False),
    Column("body", LargeBinary, nullable=False),  # cut at quarantine_body_bytes
    Column("body_size", Integer, nullable=False),  # the size as received
    Column("deliveries", Integer, nullable=False, server_default=text("1")),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("discarded_at", DateTime(timezone=True)),
    Column("discarded_by", Text),
    Column("discard_reason", Text),
    Column("replayed_at", DateTime(timezone=True)),
    Column("replayed_by", Text),
    Column("replayed_key", Text),
    CheckConstraint(one_of("state", QuarantineState), name="state_allowed"),
    CheckConstraint(one_of("problem", Problem), name="problem_allowed"),
    CheckConstraint("deliveries >= 1", name="deliveries_positive"),
    CheckConstraint("octet_length(body) <= body_size", name="body_within_size"),
    CheckConstraint("(idempotency_key IS NULL) = (rejection IS NULL)", name="rejection_iff_key"),
    CheckConstraint(
        f"state <> '{QuarantineState.DISCARDED}' "
        "OR (discarded_at IS NOT NULL AND discard_reason IS NOT NULL)",
        name="discard_audited",
    ),
    CheckConstraint(
        f"state <> '{QuarantineState.REPLAYED}' "
        "OR (replayed_at IS NOT NULL AND replayed_key IS NOT NULL)",
        name="replay_audited",
    ),
    # serves: `orderq quarantine list` (most recently seen first, per state)
    Index(
        "ix_quarantined_messages_state_last_seen_at",
        "state",
        text("last_seen_at DESC"),
        text("id DESC"),
    ),
    # serves: the purge_quarantine job (rows last seen before the retention window)
    Index("ix_quarantined_messages_last_seen_at", "last_seen_at"),
    # serves: `orderq quarantine list --key` (what happened to a key's messages)
    Index(
        "ix_quarantined_messages_idempotency_key",
        "idempotency_key",
        postgresql_where=text("idempotency_key IS NOT NULL"),
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
    # serves: product search by SKU prefix (LIKE 'MUG%' in any collation)
    Index("ix_products_sku_pattern", "sku", postgresql_ops={"sku": "text_pattern_ops"}),
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
        # ORD-000042: at least six digits, never cut (migration 0008 defines it)
        server_default=text("next_order_number()"),
    ),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("customer_ref", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    _version(),
    _created_at(),
    _updated_at(),
    CheckConstraint(one_of("status", OrderStatus), name="status_allowed"),
    CheckConstraint("total_cents >= 0", name="total_not_negative"),
    # serves: the reporting query (orders in a status, newest first, keyset pages) and
    # the hot report (orders in a status and date range with their items' totals)
    Index("ix_orders_status_created_at", "status", text("created_at DESC"), text("id DESC")),
    # serves: a customer's orders, newest first, keyset pages
    Index(
        "ix_orders_customer_ref_created_at",
        "customer_ref",
        text("created_at DESC"),
        text("id DESC"),
    ),
)

# A customer of the shop, known by the `customer_ref` orders carry. place_order creates
# the row on a customer's first order and fills in the contact details the command
# brings (name, e-mail, phone: all optional); search finds customers by any of them.
customers = Table(
    "customers",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # serves: the customer of an order (place_order's upsert), search by exact reference
    Column("customer_ref", Text, nullable=False, unique=True),
    Column("name", Text),
    Column("email", Text),
    Column("phone", Text),
    # the phone's digits key (worker/domain/contacts.py), written with the phone
    Column("phone_digits", Text),
    _version(),
    _created_at(),
    _updated_at(),
    CheckConstraint("phone_digits ~ '^[0-9]+$'", name="phone_digits_only"),
    # serves: customer search by phone (digits key, exact or prefix)
    Index(
        "ix_customers_phone_digits",
        "phone_digits",
        postgresql_ops={"phone_digits": "text_pattern_ops"},
    ),
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
    CheckConstraint(one_of("reason", MovementReason), name="reason_allowed"),
    CheckConstraint("on_hand_delta <> 0 OR reserved_delta <> 0", name="moves_something"),
    # serves: a product's movements newest first (keyset pages), and reconciling a
    # product's stock with the sum of its movements (product_id leads)
    Index(
        "ix_stock_movements_product_id_created_at",
        "product_id",
        text("created_at DESC"),
        text("id DESC"),
    ),
    # serves: an order's stock history (audit, cancel/ship checks)
    Index(
        "ix_stock_movements_order_id",
        "order_id",
        postgresql_where=text("order_id IS NOT NULL"),
    ),
)


# -- statement statistics: pg_stat_statements snapshots and their baselines --------------

statement_snapshots = Table(
    "statement_snapshots",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("queryid", BigInteger, nullable=False),
    # pg_stat_statements' normalized text: constants are already replaced by $n
    Column("query", Text, nullable=False),
    # cumulative counters as pg_stat_statements reported them at `taken_at`
    Column("calls", BigInteger, nullable=False),
    Column("total_exec_ms", Float, nullable=False),
    Column("rows", BigInteger, nullable=False),
    CheckConstraint("calls >= 0", name="calls_not_negative"),
    # serves: the previous snapshot of one statement (period deltas, regressions)
    Index("ix_statement_snapshots_queryid_taken_at", "queryid", "taken_at"),
    # serves: the purge of old snapshots
    Index("ix_statement_snapshots_taken_at", "taken_at"),
)

statement_baselines = Table(
    "statement_baselines",
    metadata,
    Column("queryid", BigInteger, primary_key=True, autoincrement=False),
    Column("query", Text, nullable=False),
    Column("mean_exec_ms", Float, nullable=False),
    Column("calls", BigInteger, nullable=False),
    _created_at(),
    CheckConstraint("mean_exec_ms >= 0", name="mean_not_negative"),
)


# -- library loans ------------------------------------------------------------------------

#: The generated full-text document of a work (migration 0011 defines the functions).

# Soft delete: members and copies are never removed (loans reference them as history);
# `deleted_at` is set instead, and the lookups below skip such rows.


members = Table(
    "members",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("member_number", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("loan_limit", Integer, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    # the phone's digits key (worker/domain/contacts.py), written with the phone
    Column("phone_digits", Text),
    Column("deleted_at", DateTime(timezone=True)),
    _version(),
    _created_at(),
    _updated_at(),
    CheckConstraint(one_of("status", MemberStatus), name="status_allowed"),
    CheckConstraint("loan_limit >= 0", name="loan_limit_not_negative"),
    CheckConstraint("phone_digits ~ '^[0-9]+$'", name="phone_digits_only"),
    # serves: member search by phone (digits key, exact or prefix); live members only
    Index(
        "ix_members_phone_digits",
        "phone_digits",
        postgresql_ops={"phone_digits": "text_pattern_ops"},
        postgresql_where=text("deleted_at IS NULL"),
    ),
    # serves: a live member by number (every loan command); a deleted member's number
    # may be issued again
    Index(
        "uq_members_member_number_live",
        "member_number",
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
    ),
)

works = Table(
    "works",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    # serves: a work by its code (add copy, reserve, cancel a reservation)
    Column("work_code", Text, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("authors", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    # withdrawn from the catalogue (search skips it; its loans stay as history)
    Column("deleted_at", DateTime(timezone=True)),
    # Full-text document: title (weight A) and authors (weight B), accents folded,
    # kept by the trigger trg_works_search_vector (orderq_work_search_vector(title,
    # authors); why a trigger and not a generated column: migration 0011).
    Column("search_vector", TSVECTOR),
    _version(),
    _created_at(),
    _updated_at(),
    # serves: work search, full text (websearch_to_tsquery); live works only
    Index(
        "ix_works_search_vector",
        "search_vector",
        postgresql_using="gin",
        postgresql_with={"fastupdate": "off"},
        postgresql_where=text("deleted_at IS NULL"),
    ),
)


copies = Table(
    "copies",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("work_id", BigInteger, ForeignKey("works.id"), nullable=False),
    # serves: a copy by barcode (checkout, return, renew); withdrawn copies keep theirs
    Column("barcode", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    _version(),
    _created_at(),
    _updated_at(),
    CheckConstraint(one_of("status", CopyStatus), name="status_allowed"),
    # serves: an available copy of a work (a new reservation takes it at once)
    Index(
        "ix_copies_work_id_status",
        "work_id",
        "status",
        postgresql_where=text("deleted_at IS NULL"),
    ),
)

loans = Table(
    "loans",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("copy_id", BigInteger, ForeignKey("copies.id"), nullable=False),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("checked_out_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("returned_at", DateTime(timezone=True)),
    Column("renewals", Integer, nullable=False, server_default=text("0")),
    # set by the overdue sweep (MarkLoanOverdue) once the loan is past due; kept after
    # the return as history. While it is set the loan cannot be renewed.
    Column("overdue_at", DateTime(timezone=True)),
    _version(),
    _created_at(),
    _updated_at(),
    CheckConstraint("renewals >= 0", name="renewals_not_negative"),
    CheckConstraint("due_at > checked_out_at", name="due_after_checkout"),
    CheckConstraint(
        "returned_at IS NULL OR returned_at >= checked_out_at", name="returned_after_checkout"
    ),
    # marked overdue only once past due, and only while still on loan
    CheckConstraint("overdue_at IS NULL OR overdue_at > due_at", name="overdue_after_due"),
    CheckConstraint(
        "overdue_at IS NULL OR returned_at IS NULL OR overdue_at <= returned_at",
        name="overdue_before_return",
    ),
    # One active loan per copy. serves: the copy's active loan (return, renew) and the
    # copy-availability check
    Index(
        "uq_loans_copy_id_active",
        "copy_id",
        unique=True,
        postgresql_where=text("returned_at IS NULL"),
    ),
    # serves: counting a member's active loans against the loan limit (checkout), and
    # the member's active loans listing (at most the loan limit: sorted in memory)
    Index("ix_loans_member_id_active", "member_id", postgresql_where=text("returned_at IS NULL")),
    # serves: a member's loans, newest checkout first (history, keyset pages)
    Index(
        "ix_loans_member_id_checked_out_at",
        "member_id",
        text("checked_out_at DESC"),
        text("id DESC"),
    ),
    # serves: the overdue sweep — active loans not yet marked, past due, oldest due first,
    # keyset pages on (due_at, id); marked and returned loans drop out of the index
    Index(
        "ix_loans_due_at_unmarked",
        "due_at",
        "id",
        postgresql_where=text("returned_at IS NULL AND overdue_at IS NULL"),
    ),
)


reservations = Table(
    "reservations",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("work_id", BigInteger, ForeignKey("works.id"), nullable=False),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("status", Text, nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    # the copy held on the shelf for this reservation, once it is ready
    Column("copy_id", BigInteger, ForeignKey("copies.id")),
    Column("ready_until", DateTime(timezone=True)),
    _created_at(),
    _updated_at(),
    CheckConstraint(one_of("status", ReservationStatus), name="status_allowed"),
    CheckConstraint(
        "status <> 'queued' OR (copy_id IS NULL AND ready_until IS NULL)",
        name="queued_holds_nothing",
    ),
    CheckConstraint(
        "status <> 'ready' OR (copy_id IS NOT NULL AND ready_until IS NOT NULL)",
        name="ready_holds_a_copy",
    ),
    # One open reservation per member and work. serves: the member's open reservation
    # of a work (reserve, cancel)
    Index(
        "uq_reservations_work_id_member_id_open",
        "work_id",
        "member_id",
        unique=True,
        postgresql_where=text(one_of("status", OPEN_RESERVATION_STATUSES)),
    ),
    # One hold per copy. serves: the reservation a held copy waits for (checkout)
    Index(
        "uq_reservations_copy_id_ready",
        "copy_id",
        unique=True,
        postgresql_where=text(f"status = '{ReservationStatus.READY}'"),
    ),
    # serves: the hold-expiry sweep — ready reservations past their pickup deadline,
    # earliest deadline first, keyset pages on (ready_until, id)
    Index(
        "ix_reservations_ready_until",
        "ready_until",
        "id",
        postgresql_where=text(f"status = '{ReservationStatus.READY}'"),
    ),
    # serves: a work's queue in order — its head (return, add copy, cancel), whether
    # others wait (renew), a reservation's position (reserve)
    Index(
        "ix_reservations_work_id_queue",
        "work_id",
        "queued_at",
        "id",
        postgresql_where=text(f"status = '{ReservationStatus.QUEUED}'"),
    ),
)


# -- scheduling and disaster drills ---------------------------------------------------------


schedule_claims = Table(
    "schedule_claims",
    metadata,
    # One row per scheduled run of a maintenance job: the beat that inserts it sends the
    # run; every other beat finds it taken (the primary key) and sends nothing.
    Column("job", Text, primary_key=True),
    # the start of the interval-grid slot, identical on every host
    Column("scheduled_for", DateTime(timezone=True), primary_key=True),
    Column("claimed_by", Text, nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # how many times a maintenance worker started this run (1 = exactly once)
    Column("runs", BigInteger, nullable=False, server_default=text("0")),
    Column("last_ran_at", DateTime(timezone=True)),
    CheckConstraint("runs >= 0", name="runs_not_negative"),
)


restore_drills = Table(
    "restore_drills",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("backup_file", Text, nullable=False),
    Column("backup_sha256", Text),
    Column("scratch_database", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", Text, nullable=False),
    # rows per table in the restored copy
    Column("restored_rows", JSONB, nullable=False, server_default=text("'{}'")),
    # invariant name -> examples of what broke it (empty when the drill passed)
    Column("failed_invariants", JSONB, nullable=False, server_default=text("'{}'")),
    Column("error", Text),
    CheckConstraint("status IN ('passed', 'failed')", name="status_allowed"),
    CheckConstraint("status = 'failed' OR error IS NULL", name="passed_without_error"),
    # serves: the latest drill (`orderq db drills`, the health of the backups)
    Index("ix_restore_drills_started_at", text("started_at DESC")),
)


# -- search indexes on expressions (accents folded by orderq_fold, migration 0011) --------
# The expression is labelled so its operator class can be named (and compared with the
# migrated schema by tests/integration/test_migrations.py).

_LIVE = text("deleted_at IS NULL")

# serves: product search by name, typo-tolerant (trigram similarity, accents folded)
Index(
    "ix_products_name_trgm",
    func.orderq_fold(products.c.name).label("folded"),
    postgresql_using="gin",
    postgresql_with={"fastupdate": "off"},
    postgresql_ops={"folded": "gin_trgm_ops"},
)
# serves: customer search by name, typo-tolerant, accents folded
Index(
    "ix_customers_name_trgm",
    func.orderq_fold(customers.c.name).label("folded"),
    postgresql_using="gin",
    postgresql_with={"fastupdate": "off"},
    postgresql_ops={"folded": "gin_trgm_ops"},
)
# serves: customer search by e-mail (exact or prefix, any case)
Index(
    "ix_customers_email",
    func.lower(customers.c.email).label("lowered"),
    postgresql_ops={"lowered": "text_pattern_ops"},
)
# serves: member search by name, typo-tolerant, accents folded; live members only
Index(
    "ix_members_name_trgm",
    func.orderq_fold(members.c.name).label("folded"),
    postgresql_using="gin",
    postgresql_with={"fastupdate": "off"},
    postgresql_ops={"folded": "gin_trgm_ops"},
    postgresql_where=_LIVE,
)
# serves: member search by e-mail (exact or prefix, any case); live members only
Index(
    "ix_members_email",
    func.lower(members.c.email).label("lowered"),
    postgresql_ops={"lowered": "text_pattern_ops"},
    postgresql_where=_LIVE,
)
# serves: work search, typo-tolerant (trigram word similarity on title and authors,
# accents folded); live works only
Index(
    "ix_works_search_text_trgm",
    func.orderq_work_text(works.c.title, works.c.authors).label("folded"),
    postgresql_using="gin",
    postgresql_with={"fastupdate": "off"},
    postgresql_ops={"folded": "gin_trgm_ops"},
    postgresql_where=_LIVE,
)
