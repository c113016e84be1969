"""The invariants every fault test and the chaos run check once the dust has settled.

    report = check_invariants(engine, Scope(keys=published, skus=skus, barcodes=copies))
    assert report.ok, report.explain()

Each check is a function registered under a name; it reads the database and returns
the offending items (empty when the invariant holds). A new area adds its own check
with `@invariant("name")` next to the others. Checks read only what the run touched
(`Scope`), so runs can share a database; a check with nothing in scope (the loan
checks of a run without copies) is skipped and reported as such.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

TERMINAL = ("succeeded", "rejected", "failed")


@dataclass(frozen=True)
class Scope:
    """What a run touched: every key it published, the products and copies it used.

    `barcodes` are copies the run owns: every checkout, return, renewal and
    reservation of them (and of their works) went through a key in `keys`, so their
    rows can be reconciled with the ledger. The loan checks also look at the works of
    these copies and at every member who borrowed or reserved one of them.
    """

    keys: Collection[str]
    skus: Collection[str] = ()
    barcodes: Collection[str] = ()


Check = Callable[[Connection, Scope], list[str]]
CHECKS: dict[str, Check] = {}


def invariant(name: str) -> Callable[[Check], Check]:
    """Register a check; it returns the offending items, one short string each."""

    def register(check: Check) -> Check:
        CHECKS[name] = check
        return check

    return register


@dataclass
class Report:
    """Outcome counts and, per invariant, what broke it."""

    published: int
    outcomes: Counter[str]
    violations: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def count(self, name: str) -> int | None:
        """How many items broke invariant `name` (None if it was not checked)."""
        return None if name in self.skipped else len(self.violations.get(name, []))

    def explain(self) -> str:
        lines = [f"{self.published} keys published; outcomes {dict(self.outcomes)}"]
        for name, items in self.violations.items():
            if items:
                lines.append(f"{name}: {len(items)} — e.g. {items[:5]}")
        return "\n".join(lines)


class NotApplicable(Exception):
    """Raised by a check whose tables do not exist in this schema."""


def outcome_of_keys(connection: Connection, keys: Collection[str]) -> dict[str, str]:
    """Each key's status as `orderq status` would report it (the ledger wins)."""
    rows = connection.execute(
        text(
            """
            SELECT k.key,
                   coalesce(l.status,
                            CASE WHEN d.state IN ('failed', 'discarded') THEN 'failed' END,
                            CASE WHEN d.attempts > 0 THEN 'running' END,
                            CASE WHEN d.state IS NOT NULL THEN 'queued' END,
                            'unknown')
            FROM unnest(CAST(:keys AS text[])) AS k(key)
            LEFT JOIN command_ledger l
                   ON l.idempotency_key = k.key AND l.status <> 'processing'
            LEFT JOIN command_deliveries d ON d.idempotency_key = k.key
            """
        ),
        {"keys": list(keys)},
    ).all()
    return dict(rows)  # type: ignore[arg-type]


@invariant("lost")
def every_key_has_a_terminal_outcome(connection: Connection, scope: Scope) -> list[str]:
    """Every published key ended succeeded, rejected or failed."""
    statuses = outcome_of_keys(connection, scope.keys)
    return sorted(f"{key}={status}" for key, status in statuses.items() if status not in TERMINAL)


@invariant("applied_twice")
def no_command_applied_twice(connection: Connection, scope: Scope) -> list[str]:
    """At most one order and one loan per key, at most one stock movement per key,
    product and kind."""
    keys = list(scope.keys)
    orders = connection.execute(
        text(
            "SELECT idempotency_key FROM orders WHERE idempotency_key = ANY(:keys) "
            "GROUP BY idempotency_key HAVING count(*) > 1"
        ),
        {"keys": keys},
    ).scalars()
    movements = connection.execute(
        text(
            "SELECT command_key || ' ' || reason || ' product ' || product_id "
            "FROM stock_movements WHERE command_key = ANY(:keys) "
            "GROUP BY command_key, product_id, reason HAVING count(*) > 1"
        ),
        {"keys": keys},
    ).scalars()
    loans = connection.execute(
        text(
            "SELECT idempotency_key FROM loans WHERE idempotency_key = ANY(:keys) "
            "GROUP BY idempotency_key HAVING count(*) > 1"
        ),
        {"keys": keys},
    ).scalars()
    return (
        [f"order {key}" for key in orders]
        + [f"movement {item}" for item in movements]
        + [f"loan {key}" for key in loans]
    )


@invariant("effects_without_outcome")
def no_effect_without_a_success(connection: Connection, scope: Scope) -> list[str]:
    """All or nothing: business rows (orders, stock movements, loans) exist only for
    keys whose outcome is `succeeded` — e.g. no loan for a rejected checkout."""
    rows = connection.execute(
        text(
            """
            SELECT DISTINCT m.command_key FROM stock_movements m
            LEFT JOIN command_ledger l
                   ON l.idempotency_key = m.command_key AND l.status = 'succeeded'
            WHERE m.command_key = ANY(:keys) AND l.id IS NULL
            UNION
            SELECT o.idempotency_key FROM orders o
            LEFT JOIN command_ledger l
                   ON l.idempotency_key = o.idempotency_key AND l.status = 'succeeded'
            WHERE o.idempotency_key = ANY(:keys) AND l.id IS NULL
            UNION
            SELECT lo.idempotency_key FROM loans lo
            LEFT JOIN command_ledger l
                   ON l.idempotency_key = lo.idempotency_key AND l.status = 'succeeded'
            WHERE lo.idempotency_key = ANY(:keys) AND l.id IS NULL
            """
        ),
        {"keys": list(scope.keys)},
    ).scalars()
    return sorted(rows)


@invariant("oversold")
def stock_never_negative_and_reconciled(connection: Connection, scope: Scope) -> list[str]:
    """On hand and reserved are never negative, reserved <= on hand, and both equal the
    sums of the product's stock movements."""
    if not scope.skus:
        raise NotApplicable("no products in scope")
    rows = connection.execute(
        text(
            """
            SELECT p.sku, s.on_hand, s.reserved,
                   coalesce(sum(m.on_hand_delta), 0), coalesce(sum(m.reserved_delta), 0)
            FROM products p
            JOIN stock_levels s ON s.product_id = p.id
            LEFT JOIN stock_movements m ON m.product_id = p.id
            WHERE p.sku = ANY(:skus)
            GROUP BY p.sku, s.on_hand, s.reserved
            """
        ),
        {"skus": list(scope.skus)},
    ).all()
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


# -- loans: checked for the copies in `Scope.barcodes` --------------------------------------

#: The works of the scope's copies, and everyone who borrowed or reserved one of them.
_SCOPE_WORKS = "SELECT DISTINCT work_id FROM copies WHERE barcode = ANY(:barcodes)"
_SCOPE_MEMBERS = f"""
    SELECT lo.member_id FROM loans lo JOIN copies c ON c.id = lo.copy_id
    WHERE c.barcode = ANY(:barcodes)
    UNION
    SELECT member_id FROM reservations WHERE work_id IN ({_SCOPE_WORKS})
"""


def _loan_params(scope: Scope) -> dict[str, list[str]]:
    if not scope.barcodes:
        raise NotApplicable("no copies in scope")
    return {"keys": list(scope.keys), "barcodes": list(scope.barcodes)}


def _succeeded(command_type: str, select: str, where: str = "TRUE") -> str:
    """`select` over the scope's succeeded outcomes of one command type (`o.result`)."""
    return (
        f"SELECT {select} FROM command_ledger o WHERE o.idempotency_key = ANY(:keys) "
        f"AND o.status = 'succeeded' AND o.command_type = '{command_type}' AND {where}"
    )


def _counted(connection: Connection, sql: str, params: dict[str, Any]) -> Counter[Any]:
    """Rows of (identity..., count) as a Counter keyed by the identity."""
    counts: Counter[Any] = Counter()
    for *identity, count in connection.execute(text(sql), params):
        counts[identity[0] if len(identity) == 1 else tuple(identity)] = count
    return counts


def _mismatches(
    what: str, rows: Counter[Any], outcomes: Counter[Any], rows_are: str, outcomes_are: str
) -> list[str]:
    """One item per identity whose row count differs from its succeeded outcomes."""
    return [
        f"{what} {_label(ident)}: {rows[ident]} {rows_are}, {outcomes[ident]} {outcomes_are}"
        for ident in sorted(rows.keys() | outcomes.keys(), key=str)
        if rows[ident] != outcomes[ident]
    ]


def _label(ident: Any) -> str:
    if isinstance(ident, tuple):
        return " ".join(str(part) for part in ident)
    return str(ident)


@invariant("double_loans")
def never_two_active_loans_per_copy(connection: Connection, scope: Scope) -> list[str]:
    """Never two active (not returned) loans of one copy, withdrawn copies included."""
    rows = connection.execute(
        text(
            "SELECT c.barcode, count(*) FROM loans lo JOIN copies c ON c.id = lo.copy_id "
            "WHERE c.barcode = ANY(:barcodes) AND lo.returned_at IS NULL "
            "GROUP BY c.barcode HAVING count(*) > 1"
        ),
        _loan_params(scope),
    ).all()
    return [f"copy {barcode}: {count} active loans" for barcode, count in rows]


@invariant("loans_vs_ledger")
def loans_agree_with_the_ledger(connection: Connection, scope: Scope) -> list[str]:
    """The loan rows are exactly what the succeeded outcomes say happened.

    Every succeeded checkout has its loan (the id, copy and member of its result);
    every closed loan of a scope copy was closed by one succeeded return (matched on
    copy and return time); a copy's renewals, a work's reservations, their
    cancellations and the holds collected by checkouts each equal their succeeded
    commands. A rejected checkout with a loan shows under `effects_without_outcome`.
    Expired reservations (maintenance) are not reconciled.
    """
    params = _loan_params(scope)
    problems = [
        f"checkout {key}: succeeded but {'no loan' if missing else 'a different loan'}"
        for key, missing in connection.execute(
            text(
                """
                SELECT o.idempotency_key, lo.id IS NULL
                FROM command_ledger o
                LEFT JOIN loans lo ON lo.idempotency_key = o.idempotency_key
                LEFT JOIN copies c ON c.id = lo.copy_id
                LEFT JOIN members m ON m.id = lo.member_id
                WHERE o.idempotency_key = ANY(:keys) AND o.status = 'succeeded'
                  AND o.command_type = 'checkout_copy'
                  AND (lo.id IS NULL OR lo.id <> (o.result->>'loan_id')::bigint
                       OR c.barcode <> o.result->>'barcode'
                       OR m.member_number <> o.result->>'member')
                """
            ),
            params,
        )
    ]
    in_scope = "o.result->>'barcode' = ANY(:barcodes)"
    problems += _mismatches(
        "return of",
        _counted(
            connection,
            "SELECT c.barcode, lo.returned_at, count(*) FROM loans lo "
            "JOIN copies c ON c.id = lo.copy_id "
            "WHERE c.barcode = ANY(:barcodes) AND lo.returned_at IS NOT NULL GROUP BY 1, 2",
            params,
        ),
        _counted(
            connection,
            _succeeded(
                "return_copy",
                "o.result->>'barcode', (o.result->>'returned_at')::timestamptz, count(*)",
                in_scope,
            )
            + " GROUP BY 1, 2",
            params,
        ),
        "loan(s) closed",
        "succeeded return(s)",
    )
    problems += _mismatches(
        "renewals of",
        _counted(
            connection,
            "SELECT c.barcode, sum(lo.renewals) FROM loans lo JOIN copies c ON c.id = lo.copy_id "
            "WHERE c.barcode = ANY(:barcodes) GROUP BY 1 HAVING sum(lo.renewals) > 0",
            params,
        ),
        _counted(
            connection,
            _succeeded("renew_loan", "o.result->>'barcode', count(*)", in_scope) + " GROUP BY 1",
            params,
        ),
        "renewal(s) on its loans",
        "succeeded renewal(s)",
    )
    problems += _mismatches(
        "holds collected on",
        _counted(
            connection,
            "SELECT c.barcode, count(*) FROM reservations r JOIN copies c ON c.id = r.copy_id "
            "WHERE c.barcode = ANY(:barcodes) AND r.status = 'fulfilled' GROUP BY 1",
            params,
        ),
        _counted(
            connection,
            _succeeded(
                "checkout_copy",
                "o.result->>'barcode', count(*)",
                f"{in_scope} AND (o.result->>'reservation_fulfilled')::boolean",
            )
            + " GROUP BY 1",
            params,
        ),
        "reservation(s) fulfilled",
        "checkout(s) that collected a hold",
    )
    scope_work = f"w.id IN ({_SCOPE_WORKS})"
    problems += _mismatches(
        "reservation",
        _counted(
            connection,
            f"SELECT r.id, count(*) FROM reservations r JOIN works w ON w.id = r.work_id "
            f"WHERE {scope_work} GROUP BY 1",
            params,
        ),
        _counted(
            connection,
            _succeeded(
                "place_reservation",
                "(o.result->>'reservation_id')::bigint, count(*)",
                f"EXISTS (SELECT 1 FROM works w WHERE w.work_code = o.result->>'work' "
                f"AND {scope_work})",
            )
            + " GROUP BY 1",
            params,
        ),
        "row(s)",
        "succeeded reservation(s)",
    )
    problems += _mismatches(
        "cancelled reservations of",
        _counted(
            connection,
            "SELECT m.member_number, w.work_code, count(*) FROM reservations r "
            "JOIN members m ON m.id = r.member_id JOIN works w ON w.id = r.work_id "
            f"WHERE {scope_work} AND r.status = 'cancelled' GROUP BY 1, 2",
            params,
        ),
        _counted(
            connection,
            _succeeded(
                "cancel_reservation",
                "o.result->>'member', o.result->>'work', count(*)",
                f"EXISTS (SELECT 1 FROM works w WHERE w.work_code = o.result->>'work' "
                f"AND {scope_work})",
            )
            + " GROUP BY 1, 2",
            params,
        ),
        "row(s)",
        "succeeded cancellation(s)",
    )
    return problems


#: A copy's status and what it must have: (active loans, ready reservations holding it).
_COPY_STATUS_MEANS = {"available": (0, 0), "on_loan": (1, 0), "on_hold": (0, 1)}


@invariant("copy_status")
def copy_status_agrees_with_loans_and_holds(connection: Connection, scope: Scope) -> list[str]:
    """`on_loan` <-> one active loan, `on_hold` <-> one ready reservation holding the
    copy, `available` <-> neither; and no reservation of a work waits in the queue while
    one of its (not withdrawn) copies is available."""
    params = _loan_params(scope)
    rows = connection.execute(
        text(
            """
            SELECT c.barcode, c.status,
                   (SELECT count(*) FROM loans lo
                    WHERE lo.copy_id = c.id AND lo.returned_at IS NULL),
                   (SELECT count(*) FROM reservations r
                    WHERE r.copy_id = c.id AND r.status = 'ready')
            FROM copies c WHERE c.barcode = ANY(:barcodes)
            """
        ),
        params,
    ).all()
    problems = [
        f"copy {barcode} is {status} with {loans} active loan(s) and {holds} hold(s)"
        for barcode, status, loans, holds in rows
        if _COPY_STATUS_MEANS.get(status) != (loans, holds)
    ]
    skipped_queues = connection.execute(
        text(
            f"""
            SELECT w.work_code, count(*) FROM works w
            JOIN reservations r ON r.work_id = w.id AND r.status = 'queued'
            WHERE w.id IN ({_SCOPE_WORKS})
              AND EXISTS (SELECT 1 FROM copies c WHERE c.work_id = w.id
                          AND c.status = 'available' AND c.deleted_at IS NULL)
            GROUP BY w.work_code
            """
        ),
        params,
    ).all()
    problems += [
        f"work {work}: a copy is available while {waiting} reservation(s) wait"
        for work, waiting in skipped_queues
    ]
    return problems


@invariant("over_loan_limit")
def members_within_their_loan_limit(connection: Connection, scope: Scope) -> list[str]:
    """No member who borrowed or reserved a scope copy has more active loans than their
    limit (the limit they have now: runs do not lower limits under open loans)."""
    rows = connection.execute(
        text(
            f"""
            SELECT m.member_number, m.loan_limit, count(lo.id) FROM members m
            LEFT JOIN loans lo ON lo.member_id = m.id AND lo.returned_at IS NULL
            WHERE m.id IN ({_SCOPE_MEMBERS})
            GROUP BY m.id, m.member_number, m.loan_limit
            HAVING count(lo.id) > m.loan_limit
            """
        ),
        _loan_params(scope),
    ).all()
    return [
        f"member {member}: {loans} active loans, limit {limit}" for member, limit, loans in rows
    ]


def check_invariants(engine: Engine, scope: Scope) -> Report:
    """Run every registered check over `scope`."""
    with engine.connect() as connection:
        statuses = outcome_of_keys(connection, scope.keys)
        report = Report(published=len(scope.keys), outcomes=Counter(statuses.values()))
        for name, check in CHECKS.items():
            try:
                report.violations[name] = check(connection, scope)
            except NotApplicable:
                report.skipped.append(name)
    return report


def assert_invariants(engine: Engine, scope: Scope) -> Report:
    """Fail the test, naming every broken invariant, unless all of them hold."""
    report = check_invariants(engine, scope)
    assert report.ok, report.explain()
    return report
