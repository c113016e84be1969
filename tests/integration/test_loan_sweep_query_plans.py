"""The loan sweeps' finders read their partial indexes, on 100k loans and reservations.

Built with set-based SQL in one transaction, analysed, explained and rolled back (as in
test_loan_query_plans.py). The statements explained are the finders' own
(`worker/adapters/due_rows.py`), with the parameters of a first and a later page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, TextClause, text

from tests.support.big_library import LIBRARY_CTES
from tests.support.ids import unique
from tests.support.plans import plan_nodes
from worker.adapters.due_rows import EXPIRED_HOLDS_SQL, UNMARKED_OVERDUE_LOANS_SQL

ROWS = 100_000
COPIES = MEMBERS = 2_000

BUILD = (
    LIBRARY_CTES
    + """,
   loans_made AS (
    -- every copy lent 50 times; the last loan of each is active, 1 in 20 of those past due
    INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at,
                       returned_at)
    SELECT c.ids[1 + g % :copies], m.ids[1 + (g * 7) % :members], :tag || '-L' || g,
           now() - interval '60 days',
           CASE WHEN g >= :rows - :copies AND g % 20 = 0 THEN now() - interval '2 days'
                ELSE now() + interval '10 days' END,
           CASE WHEN g < :rows - :copies THEN now() - interval '50 days' END
    FROM c, m, generate_series(0, :rows - 1) g
    RETURNING 1
)
-- 98k closed reservations, then one ready hold per copy, 1 in 20 of them past deadline
INSERT INTO reservations (work_id, member_id, status, queued_at, copy_id, ready_until)
SELECT work.id, m.ids[1 + g % :members],
       CASE WHEN g < :rows - :copies THEN 'fulfilled' ELSE 'ready' END,
       now() - interval '20 days', c.ids[1 + g % :copies],
       CASE WHEN g >= :rows - :copies AND g % 20 = 0 THEN now() - interval '1 hour'
            ELSE now() + interval '3 days' END
FROM work, c, m, generate_series(0, :rows - 1) g
WHERE (SELECT count(*) FROM loans_made) > 0
"""
)


@pytest.fixture(scope="module")
def big_tables(engine: Engine) -> Iterator[Connection]:
    """A connection whose open transaction sees 100k extra loans and reservations."""
    tag = unique("EXPLAIN")
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(
                text(BUILD), {"tag": tag, "copies": COPIES, "members": MEMBERS, "rows": ROWS}
            )
            connection.execute(text("ANALYZE loans"))
            connection.execute(text("ANALYZE reservations"))
            yield connection
        finally:
            transaction.rollback()


def scans(connection: Connection, statement: TextClause, params: dict[str, Any]) -> list:
    """(node type, index name, relation) of every scan node in the statement's plan."""
    return [
        (n["Node Type"], n.get("Index Name"), n.get("Relation Name"))
        for n in plan_nodes(connection, statement.text, params)
        if "Scan" in n["Node Type"]
    ]


FIRST_PAGE = (datetime(1, 1, 1, tzinfo=UTC), 0)


def test_the_fixture_has_the_due_rows_the_plans_are_judged_on(big_tables):
    due_holds = big_tables.execute(
        EXPIRED_HOLDS_SQL, {"after_until": FIRST_PAGE[0], "after_id": 0, "limit": 10_000}
    ).all()
    due_loans = big_tables.execute(
        UNMARKED_OVERDUE_LOANS_SQL, {"after_due": FIRST_PAGE[0], "after_id": 0, "limit": 10_000}
    ).all()
    assert len(due_holds) >= COPIES // 20 and len(due_loans) >= COPIES // 20


@pytest.mark.parametrize(
    ("statement", "params", "index", "table"),
    [
        (
            EXPIRED_HOLDS_SQL,
            {"after_until": FIRST_PAGE[0], "after_id": 0},
            "ix_reservations_ready_until",
            "reservations",
        ),
        (
            EXPIRED_HOLDS_SQL,
            {"after_until": datetime.now(UTC), "after_id": 12345},
            "ix_reservations_ready_until",
            "reservations",
        ),
        (
            UNMARKED_OVERDUE_LOANS_SQL,
            {"after_due": FIRST_PAGE[0], "after_id": 0},
            "ix_loans_due_at_unmarked",
            "loans",
        ),
        (
            UNMARKED_OVERDUE_LOANS_SQL,
            {"after_due": datetime.now(UTC), "after_id": 12345},
            "ix_loans_due_at_unmarked",
            "loans",
        ),
    ],
    ids=["holds-first-page", "holds-next-page", "loans-first-page", "loans-next-page"],
)
def test_each_finder_reads_its_partial_index(big_tables, statement, params, index, table):
    found = scans(big_tables, statement, {**params, "limit": 1000})

    assert {name for _, name, _ in found} == {index}
    assert ("Seq Scan", None, table) not in found
