"""The loan queries the handlers run use their indexes on a table of 100k loans.

The rows are built with set-based SQL inside one transaction, analysed, explained and
rolled back: other tests never see them. The statements explained are the ones the
repositories execute (compiled from `worker/adapters/loan_repositories.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Select, text

from tests.support.big_library import LIBRARY_CTES
from tests.support.ids import unique
from tests.support.plans import plan_nodes
from worker.adapters.loan_repositories import copy_active_loan_query, member_active_loans_query

LOANS = 100_000
COPIES = MEMBERS = 2_000  # every copy lent 50 times; the last loan of each is still active

BUILD = (
    LIBRARY_CTES
    + """
INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at, returned_at)
SELECT c.ids[1 + g % :copies],
       m.ids[1 + (g * 7) % :members],  -- 7 is coprime with 2000: one active loan each
       :tag || '-L' || g,
       now() - interval '30 days',
       now() - interval '9 days',
       CASE WHEN g < :loans - :copies THEN now() - interval '10 days' END
FROM c, m, generate_series(0, :loans - 1) g
"""
)


@pytest.fixture(scope="module")
def hundred_thousand_loans(
    engine: Engine, session_factory: Any
) -> Iterator[tuple[Connection, dict[str, int]]]:
    """A connection whose open transaction sees 100k extra loans (rolled back after).

    `session_factory` maps the domain classes, which the repository statements select.
    """
    tag = unique("EXPLAIN")
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(
                text(BUILD), {"tag": tag, "copies": COPIES, "members": MEMBERS, "loans": LOANS}
            )
            connection.execute(text("ANALYZE loans"))
            ids = connection.execute(
                text(
                    "SELECT (SELECT id FROM members WHERE member_number = :tag || '-M1') AS member,"
                    " (SELECT id FROM copies WHERE barcode = :tag || '-C1') AS copy"
                ),
                {"tag": tag},
            ).one()
            yield connection, {"member": ids.member, "copy": ids.copy}
        finally:
            transaction.rollback()


def compiled_plan(connection: Connection, query: Select) -> list[dict[str, Any]]:
    """Every node of the repository statement's plan, flattened."""
    sql = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    return plan_nodes(connection, str(sql))


def loan_scans(nodes: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(node type, index name) of every node that reads the loans table or its indexes."""
    return [
        (node["Node Type"], node.get("Index Name"))
        for node in nodes
        if node.get("Relation Name") == "loans" or "Index Name" in node
    ]


def test_the_fixture_is_the_size_the_plans_are_judged_on(hundred_thousand_loans):
    connection, ids = hundred_thousand_loans
    count = "SELECT count(*) FROM loans WHERE idempotency_key LIKE 'EXPLAIN-%'"
    assert connection.execute(text(count)).scalar() >= LOANS
    active = "SELECT count(*) FROM loans WHERE member_id = :m AND returned_at IS NULL"
    assert connection.execute(text(active), {"m": ids["member"]}).scalar() == 1


def test_members_active_loans_use_the_partial_member_index(hundred_thousand_loans):
    connection, ids = hundred_thousand_loans

    scans = loan_scans(compiled_plan(connection, member_active_loans_query(ids["member"])))

    assert scans, "the plan never reads loans"
    assert {index for _, index in scans if index} == {"ix_loans_member_id_active"}
    assert "Seq Scan" not in {node for node, _ in scans}


def test_copy_availability_uses_the_one_active_loan_per_copy_index(hundred_thousand_loans):
    connection, ids = hundred_thousand_loans

    scans = loan_scans(compiled_plan(connection, copy_active_loan_query(ids["copy"])))

    assert scans, "the plan never reads loans"
    assert {index for _, index in scans if index} == {"uq_loans_copy_id_active"}
    assert "Seq Scan" not in {node for node, _ in scans}
