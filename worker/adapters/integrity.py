"""The data's invariants as queries: what `orderq db verify`, the restore drill and the
test suite's invariant checks all ask of a database.

Each check reads the database and returns the offending items, one short string each
(empty when the invariant holds). A `Scope` narrows a check to the keys, products and
copies one run touched (the tests share a database); `Scope()` checks everything.

Whole-database checks allow for the ledger retention purge: a business row whose
ledger row was purged is fine; one whose key is in the ledger with an outcome other
than `succeeded` is not. A scoped check is stricter: every row of a key in scope
needs that key's `succeeded` outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text


@dataclass(frozen=True)
class Scope:
    """What to check: None = everything of that kind in the database."""

    keys: Collection[str] | None = None
    skus: Collection[str] | None = None
    barcodes: Collection[str] | None = None

    @property
    def whole_database(self) -> bool:
        return self.keys is None and self.skus is None and self.barcodes is None

    def params(self) -> dict[str, list[str]]:
        values = {"keys": self.keys, "skus": self.skus, "barcodes": self.barcodes}
        return {name: list(value) for name, value in values.items() if value is not None}


Check = Callable[[Connection, Scope], list[str]]


def _only(scope: Scope, name: str, column: str) -> str:
    """`AND column = ANY(:name)` when the scope narrows `name`, else nothing."""
    return f" AND {column} = ANY(:{name})" if getattr(scope, name) is not None else ""


def _rows(connection: Connection, sql: str, scope: Scope) -> list[Any]:
    return list(connection.execute(text(sql), scope.params()).all())


def stock_reconciled(connection: Connection, scope: Scope) -> list[str]:
    """On hand and reserved are never negative, reserved <= on hand, and both equal
    the sums of the product's stock movements."""
    rows = _rows(
        connection,
        f"""
        WITH moved AS (
            SELECT m.product_id, sum(m.on_hand_delta) AS on_hand, sum(m.reserved_delta) AS reserved
            FROM stock_movements m JOIN products p ON p.id = m.product_id
            WHERE TRUE {_only(scope, "skus", "p.sku")}
            GROUP BY m.product_id
        )
        SELECT p.sku, s.on_hand, s.reserved, coalesce(m.on_hand, 0), coalesce(m.reserved, 0)
        FROM products p
        JOIN stock_levels s ON s.product_id = p.id
        LEFT JOIN moved m ON m.product_id = p.id
        WHERE (s.on_hand < 0 OR s.reserved < 0 OR s.reserved > s.on_hand
               OR s.on_hand <> coalesce(m.on_hand, 0) OR s.reserved <> coalesce(m.reserved, 0))
              {_only(scope, "skus", "p.sku")}
        ORDER BY p.sku
        """,
        scope,
    )
    problems = []
    for sku, on_hand, reserved, moved_on_hand, moved_reserved in rows:
        if on_hand < 0 or reserved < 0 or reserved > on_hand:
            problems.append(f"{sku}: on_hand={on_hand} reserved={reserved}")
        if (on_hand, reserved) != (moved_on_hand, moved_reserved):
            problems.append(
                f"{sku}: stock ({on_hand}, {reserved}) != movements "
                f"({moved_on_hand}, {moved_reserved})"
            )
    return problems


def one_active_loan_per_copy(connection: Connection, scope: Scope) -> list[str]:
    """Never two active (not returned) loans of one copy, withdrawn copies included."""
    rows = _rows(
        connection,
        "SELECT c.barcode, count(*) FROM loans lo JOIN copies c ON c.id = lo.copy_id "
        f"WHERE lo.returned_at IS NULL {_only(scope, 'barcodes', 'c.barcode')} "
        "GROUP BY c.barcode HAVING count(*) > 1 ORDER BY c.barcode",
        scope,
    )
    return [f"copy {barcode}: {count} active loans" for barcode, count in rows]


def one_effect_per_key(connection: Connection, scope: Scope) -> list[str]:
    """At most one order and one loan per key, at most one stock movement per key,
    product and kind."""
    orders = _rows(
        connection,
        f"SELECT idempotency_key FROM orders WHERE TRUE {_only(scope, 'keys', 'idempotency_key')} "
        "GROUP BY idempotency_key HAVING count(*) > 1",
        scope,
    )
    movements = _rows(
        connection,
        "SELECT command_key || ' ' || reason || ' product ' || product_id FROM stock_movements "
        f"WHERE TRUE {_only(scope, 'keys', 'command_key')} "
        "GROUP BY command_key, product_id, reason HAVING count(*) > 1",
        scope,
    )
    loans = _rows(
        connection,
        f"SELECT idempotency_key FROM loans WHERE TRUE {_only(scope, 'keys', 'idempotency_key')} "
        "GROUP BY idempotency_key HAVING count(*) > 1",
        scope,
    )
    return (
        [f"order {key}" for (key,) in orders]
        + [f"movement {item}" for (item,) in movements]
        + [f"loan {key}" for (key,) in loans]
    )


def _without_success(table: str, key_column: str, scope: Scope) -> str:
    """Keys of `table` rows that lack a succeeded outcome (see the module docstring)."""
    if scope.keys is not None:
        return (
            f"SELECT DISTINCT t.{key_column} FROM {table} t "
            f"LEFT JOIN command_ledger l ON l.idempotency_key = t.{key_column} "
            "AND l.status = 'succeeded' "
            f"WHERE t.{key_column} = ANY(:keys) AND l.id IS NULL"
        )
    return (
        f"SELECT DISTINCT t.{key_column} FROM {table} t "
        f"JOIN command_ledger l ON l.idempotency_key = t.{key_column} "
        "WHERE l.status <> 'succeeded'"
    )


def effects_only_for_successes(connection: Connection, scope: Scope) -> list[str]:
    """All or nothing: business rows (orders, stock movements, loans) exist only for
    keys whose outcome is `succeeded` — e.g. no loan for a rejected checkout."""
    rows = _rows(
        connection,
        " UNION ".join(
            _without_success(table, column, scope)
            for table, column in (
                ("stock_movements", "command_key"),
                ("orders", "idempotency_key"),
                ("loans", "idempotency_key"),
            )
        ),
        scope,
    )
    return sorted(key for (key,) in rows)


def successes_have_their_rows(connection: Connection, scope: Scope) -> list[str]:
    """Every succeeded place-order has the order its result names (number, total), and
    every succeeded checkout the loan its result names (id, copy, member)."""
    only = _only(scope, "keys", "o.idempotency_key")
    orders = _rows(
        connection,
        f"""
        SELECT o.idempotency_key, r.id IS NULL FROM command_ledger o
        LEFT JOIN orders r ON r.idempotency_key = o.idempotency_key
        WHERE o.status = 'succeeded' AND o.command_type = 'place_order' {only}
          AND (r.id IS NULL OR r.order_number <> o.result->>'order_number'
               OR r.total_cents <> (o.result->>'total_cents')::bigint)
        """,
        scope,
    )
    loans = _rows(
        connection,
        f"""
        SELECT o.idempotency_key, lo.id IS NULL FROM command_ledger o
        LEFT JOIN loans lo ON lo.idempotency_key = o.idempotency_key
        LEFT JOIN copies c ON c.id = lo.copy_id
        LEFT JOIN members m ON m.id = lo.member_id
        WHERE o.status = 'succeeded' AND o.command_type = 'checkout_copy' {only}
          AND (lo.id IS NULL OR lo.id <> (o.result->>'loan_id')::bigint
               OR c.barcode <> o.result->>'barcode' OR m.member_number <> o.result->>'member')
        """,
        scope,
    )
    return [
        f"order {key}: succeeded but {'no order' if missing else 'a different order'}"
        for key, missing in orders
    ] + [
        f"checkout {key}: succeeded but {'no loan' if missing else 'a different loan'}"
        for key, missing in loans
    ]


#: A copy's status and what it must have: (active loans, ready reservations holding it).
_COPY_STATUS_MEANS = {"available": (0, 0), "on_loan": (1, 0), "on_hold": (0, 1)}


def copy_status_agrees(connection: Connection, scope: Scope) -> list[str]:
    """`on_loan` <-> one active loan, `on_hold` <-> one ready reservation holding the
    copy, `available` <-> neither; and no reservation of a work waits in the queue while
    one of its (not withdrawn) copies is available."""
    rows = _rows(
        connection,
        f"""
        SELECT c.barcode, c.status,
               (SELECT count(*) FROM loans lo
                WHERE lo.copy_id = c.id AND lo.returned_at IS NULL),
               (SELECT count(*) FROM reservations r
                WHERE r.copy_id = c.id AND r.status = 'ready')
        FROM copies c WHERE TRUE {_only(scope, "barcodes", "c.barcode")}
        """,
        scope,
    )
    problems = [
        f"copy {barcode} is {status} with {loans} active loan(s) and {holds} hold(s)"
        for barcode, status, loans, holds in rows
        if _COPY_STATUS_MEANS.get(status) != (loans, holds)
    ]
    works = (
        "AND w.id IN (SELECT work_id FROM copies WHERE barcode = ANY(:barcodes))"
        if scope.barcodes is not None
        else ""
    )
    skipped_queues = _rows(
        connection,
        f"""
        SELECT w.work_code, count(*) FROM works w
        JOIN reservations r ON r.work_id = w.id AND r.status = 'queued'
        WHERE EXISTS (SELECT 1 FROM copies c WHERE c.work_id = w.id
                      AND c.status = 'available' AND c.deleted_at IS NULL) {works}
        GROUP BY w.work_code
        """,
        scope,
    )
    return problems + [
        f"work {work}: a copy is available while {waiting} reservation(s) wait"
        for work, waiting in skipped_queues
    ]


#: Sequences no column owns, with the query giving the highest value already used.
_FREE_SEQUENCES = {
    "order_number_seq": "SELECT max(substring(order_number FROM 5)::bigint) FROM orders",
}


def sequences_ahead(connection: Connection, scope: Scope) -> list[str]:
    """Every sequence has handed out at least the highest value its table holds, so the
    next insert cannot collide (a restore that forgot setval would fail here)."""
    if not scope.whole_database:
        return []
    owned = connection.execute(
        text(
            """
            SELECT seq.relname, tab.relname, att.attname, s.last_value
            FROM pg_depend d
            JOIN pg_class seq ON seq.oid = d.objid AND seq.relkind = 'S'
            JOIN pg_class tab ON tab.oid = d.refobjid
            JOIN pg_attribute att ON att.attrelid = tab.oid AND att.attnum = d.refobjsubid
            JOIN pg_sequences s ON s.schemaname = current_schema() AND s.sequencename = seq.relname
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
              AND d.deptype IN ('a', 'i') AND seq.relnamespace = current_schema()::regnamespace
            ORDER BY seq.relname
            """
        )
    ).all()
    quote = connection.dialect.identifier_preparer.quote
    highest: list[tuple[str, str, int | None]] = [
        (
            str(sequence),
            f"{table}.{column}",
            connection.execute(text(f"SELECT max({quote(column)}) FROM {quote(table)}")).scalar(),
        )
        for sequence, table, column, _ in owned
    ]
    last_values = {str(sequence): last for sequence, _, _, last in owned}
    for sequence, query in _FREE_SEQUENCES.items():
        last = connection.execute(
            text("SELECT last_value FROM pg_sequences WHERE sequencename = :name"),
            {"name": sequence},
        ).scalar()
        last_values[sequence] = last
        highest.append((sequence, "orders.order_number", connection.execute(text(query)).scalar()))
    return [
        f"{sequence} at {last_values[sequence]} behind {where} = {used}"
        for sequence, where, used in highest
        if used is not None and (last_values[sequence] or 0) < used
    ]


#: Every invariant `orderq db verify` checks, by the name it reports.
CHECKS: dict[str, Check] = {
    "stock_reconciled": stock_reconciled,
    "one_active_loan_per_copy": one_active_loan_per_copy,
    "one_effect_per_key": one_effect_per_key,
    "effects_only_for_successes": effects_only_for_successes,
    "successes_have_their_rows": successes_have_their_rows,
    "copy_status_agrees": copy_status_agrees,
    "sequences_ahead": sequences_ahead,
}


@dataclass
class Verification:
    """Per invariant, what broke it (an empty list: it holds)."""

    violations: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, items in self.violations.items() if items]


def verify(engine: Engine, scope: Scope | None = None) -> Verification:
    """Run every check over `scope` (the whole database by default), all in one
    snapshot: a database under load is judged at one instant."""
    scope = scope or Scope()
    with engine.connect().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    ) as connection:
        return Verification({name: check(connection, scope) for name, check in CHECKS.items()})
