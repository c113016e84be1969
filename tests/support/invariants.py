"""The invariants every fault test and the chaos run check once the dust has settled.

    report = check_invariants(engine, Scope(keys=published, skus=skus))
    assert report.ok, report.explain()

Each check is a function registered under a name; it reads the database and returns
the offending items (empty when the invariant holds). A new area adds its own check
with `@invariant("name")` next to the others — e.g. loans: "never two active loans for
one copy" (`double_loans`, below, already runs once a `loans` table exists).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

TERMINAL = ("succeeded", "rejected", "failed")


@dataclass(frozen=True)
class Scope:
    """What a run touched: every key it published, the products it used."""

    keys: Collection[str]
    skus: Collection[str] = ()


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
    """At most one order per key, at most one stock movement per key, product and kind."""
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
    return [f"order {key}" for key in orders] + [f"movement {item}" for item in movements]


@invariant("effects_without_outcome")
def no_effect_without_a_success(connection: Connection, scope: Scope) -> list[str]:
    """All or nothing: business rows exist only for keys whose outcome is `succeeded`."""
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
            """
        ),
        {"keys": list(scope.keys)},
    ).scalars()
    return sorted(rows)


@invariant("oversold")
def stock_never_negative_and_reconciled(connection: Connection, scope: Scope) -> list[str]:
    """On hand and reserved are never negative, reserved <= on hand, and both equal the
    sums of the product's stock movements."""
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


@invariant("double_loans")
def never_two_active_loans_per_copy(connection: Connection, scope: Scope) -> list[str]:
    """Never two active (not returned) loans of one copy. Needs the loans schema."""
    has_loans = connection.execute(
        text(
            "SELECT count(*) = 2 FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'loans' "
            "AND column_name IN ('copy_id', 'returned_at')"
        )
    ).scalar()
    if not has_loans:
        raise NotApplicable("no loans table")
    rows = connection.execute(
        text(
            "SELECT copy_id FROM loans WHERE returned_at IS NULL "
            "GROUP BY copy_id HAVING count(*) > 1"
        )
    ).scalars()
    return [f"copy {copy_id}" for copy_id in rows]


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
