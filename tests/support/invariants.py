"""The invariants every fault test and the chaos run check once the dust has settled.

    report = check_invariants(engine, Scope(keys=published, skus=skus, barcodes=copies))
    assert report.ok, report.explain()

Each check is a function registered under a name; it reads the database and returns
the offending items (empty when the invariant holds). The data's own invariants
(stock, loans per copy, effects per key, outcomes vs rows, copy status) are the
queries of `worker.adapters.integrity`, the ones `orderq db verify` runs on a whole
database; here they are narrowed to what one run touched (`Scope`), so runs can share
a database. A new area adds its own check with `@invariant("name")` next to the
others; a check with nothing in scope (the loan checks of a run without copies) is
skipped and reported as such.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from worker.adapters import integrity

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


def _database_scope(
    scope: Scope, *, keys: bool = False, skus: bool = False, barcodes: bool = False
) -> integrity.Scope:
    """The run's scope for a shared check from worker.adapters.integrity."""
    if skus and not scope.skus:
        raise NotApplicable("no products in scope")
    if barcodes and not scope.barcodes:
        raise NotApplicable("no copies in scope")
    return integrity.Scope(
        keys=list(scope.keys) if keys else None,
        skus=list(scope.skus) if skus else None,
        barcodes=list(scope.barcodes) if barcodes else None,
    )


@invariant("applied_twice")
def no_command_applied_twice(connection: Connection, scope: Scope) -> list[str]:
    """At most one order and one loan per key, at most one stock movement per key,
    product and kind."""
    return integrity.one_effect_per_key(connection, _database_scope(scope, keys=True))


@invariant("effects_without_outcome")
def no_effect_without_a_success(connection: Connection, scope: Scope) -> list[str]:
    """All or nothing: business rows (orders, stock movements, loans) exist only for
    keys whose outcome is `succeeded` — e.g. no loan for a rejected checkout."""
    return integrity.effects_only_for_successes(connection, _database_scope(scope, keys=True))


@invariant("outcomes_without_effects")
def every_success_has_its_rows(connection: Connection, scope: Scope) -> list[str]:
    """A succeeded place-order has its order, a succeeded checkout its loan."""
    return integrity.successes_have_their_rows(connection, _database_scope(scope, keys=True))


@invariant("oversold")
def stock_never_negative_and_reconciled(connection: Connection, scope: Scope) -> list[str]:
    """On hand and reserved are never negative, reserved <= on hand, and both equal the
    sums of the product's stock movements."""
    return integrity.stock_reconciled(connection, _database_scope(scope, skus=True))


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
    return integrity.one_active_loan_per_copy(connection, _database_scope(scope, barcodes=True))


@invariant("loans_vs_ledger")
def loans_agree_with_the_ledger(connection: Connection, scope: Scope) -> list[str]:
    """The loan rows are exactly what the succeeded outcomes say happened.

    Every closed loan of a scope copy was closed by one succeeded return (matched on
    copy and return time); a copy's renewals, a work's reservations, their
    cancellations and the holds collected by checkouts each equal their succeeded
    commands. A succeeded checkout without its loan shows under
    `outcomes_without_effects`, a rejected one with a loan under
    `effects_without_outcome`.
    Expired reservations (maintenance) are not reconciled.
    """
    params = _loan_params(scope)
    problems: list[str] = []
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


@invariant("copy_status")
def copy_status_agrees_with_loans_and_holds(connection: Connection, scope: Scope) -> list[str]:
    """`on_loan` <-> one active loan, `on_hold` <-> one ready reservation holding the
    copy, `available` <-> neither; and no reservation of a work waits in the queue while
    one of its (not withdrawn) copies is available."""
    return integrity.copy_status_agrees(connection, _database_scope(scope, barcodes=True))


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
