"""A read-side data set of 10^5 rows per searched or listed table, built with set-based
INSERTs inside a transaction the caller rolls back: plans are real (after ANALYZE), the
rows vanish afterwards."""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

from orderq.seed.run import (
    SEARCH_GIN_INDEXES,
    TABLES,  # the same tables the seed fills
)

ROWS = 100_000

# Word lists so names and titles vary like real ones (trigram selectivity matters).
_WORDS = (
    "(ARRAY['river','shadow','garden','winter','silver','empire','secret','ocean','forest',"
    "'night','stone','crown','storm','island','mirror','letter','summer','fire','glass',"
    "'north','house','road','dream','queen','harbour','valley','bridge','tower','song',"
    "'light','iron','salt','paper','wolf','rose','cloud','city','game','heart','clock'])"
)
_FIRST = (
    "(ARRAY['ada','ben','chloe','dev','ella','finn','grace','hugo','iris','jack','kira','liam',"
    "'mia','noah','olga','piet','quinn','rosa','sven','tara','uma','vik','wren','yara','zeno'])"
)
_LAST = (
    "(ARRAY['smith','jones','khan','novak','garcia','muller','rossi','dubois','silva','kowalski',"
    "'nakamura','olsen','petrov','larsen','moreau','schmidt','costa','haddad','ivanova','byrne'])"
)

STATEMENTS = [
    f"""
    INSERT INTO works (work_code, title, authors)
    SELECT 'PLAN-W' || n,
           initcap({_WORDS}[1 + n % 40] || ' ' || {_WORDS}[1 + (n / 40) % 40] || ' of the '
                   || {_WORDS}[1 + (n / 1600) % 40]) || ' ' || n,
           ARRAY[initcap({_FIRST}[1 + n % 25]) || ' ' || initcap({_LAST}[1 + (n / 25) % 20])]
    FROM generate_series(1, {ROWS}) n
    """,
    """
    INSERT INTO works (work_code, title, authors) VALUES
      ('PLAN-HP', 'Harry Potter and the Philosopher''s Stone', ARRAY['J. K. Rowling']),
      ('PLAN-WH', 'Wuthering Heights', ARRAY['Emily Brontë'])
    """,
    """
    INSERT INTO copies (work_id, barcode, status)
    SELECT id, 'PLAN-C' || id, CASE WHEN id % 10 = 0 THEN 'on_loan' ELSE 'available' END
    FROM works WHERE work_code LIKE 'PLAN-%'
    """,
    f"""
    INSERT INTO members (member_number, name, status, loan_limit, email, phone, phone_digits)
    SELECT 'PLAN-M' || n,
           initcap({_FIRST}[1 + n % 25]) || ' ' || initcap({_LAST}[1 + (n / 25) % 20]) || n,
           'active', 5, 'member' || n || '@example.org', '020 7' || lpad(n::text, 7, '0'),
           '4420' || lpad(n::text, 8, '0')
    FROM generate_series(1, {ROWS}) n
    """,
    """
    INSERT INTO members (member_number, name, status, loan_limit, phone, phone_digits)
    VALUES ('PLAN-JANE', 'Jane Example', 'active', 5, '020 7946 0000', '442079460000')
    """,
    f"""
    INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at, returned_at)
    SELECT c.id, m.id, 'plan-loan-' || c.id,
           now() - (c.id % 400) * interval '1 day',
           now() - (c.id % 400) * interval '1 day' + interval '21 days',
           CASE WHEN c.status = 'on_loan' THEN NULL
                ELSE now() - (c.id % 400) * interval '1 day' + interval '7 days' END
    FROM copies c
    JOIN members m ON m.member_number = 'PLAN-M' || (1 + c.id % {ROWS // 10})
    WHERE c.barcode LIKE 'PLAN-C%'
    """,
    f"""
    INSERT INTO products (sku, name, price_cents)
    SELECT 'PLAN-' || lpad(n::text, 6, '0'),
           initcap({_WORDS}[1 + n % 40] || ' ' || {_WORDS}[1 + (n / 40) % 40]) || ' mug ' || n,
           100 + n % 5000
    FROM generate_series(1, {ROWS}) n
    """,
    """
    INSERT INTO stock_levels (product_id, on_hand, reserved)
    SELECT id, 1000, 0 FROM products WHERE sku LIKE 'PLAN-%'
    """,
    f"""
    INSERT INTO customers (customer_ref, name, email, phone, phone_digits)
    SELECT 'plan-cust-' || n,
           initcap({_FIRST}[1 + n % 25]) || ' ' || initcap({_LAST}[1 + (n / 25) % 20]) || n,
           'customer' || n || '@shop.test', '+33 1 ' || lpad(n::text, 8, '0'),
           '331' || lpad(n::text, 8, '0')
    FROM generate_series(1, {ROWS}) n
    """,
    f"""
    INSERT INTO orders (idempotency_key, customer_ref, status, total_cents, created_at)
    SELECT 'plan-order-' || n, 'plan-cust-' || (1 + n % {ROWS // 20}),
           (ARRAY['placed','paid','shipped','shipped','shipped','cancelled'])[1 + n % 6],
           0, now() - n * interval '5 minutes'
    FROM generate_series(1, {ROWS}) n
    """,
    """
    INSERT INTO order_items (order_id, product_id, sku, qty, unit_price_cents, line_total_cents)
    SELECT o.id, p.id, p.sku, 1 + o.id % 3, p.price_cents, (1 + o.id % 3) * p.price_cents
    FROM orders o JOIN products p ON p.sku = 'PLAN-' || lpad((1 + o.id % 99999)::text, 6, '0')
    WHERE o.idempotency_key LIKE 'plan-order-%'
    """,
    """
    UPDATE orders o SET total_cents = t.total
    FROM (SELECT order_id, sum(line_total_cents) AS total FROM order_items GROUP BY order_id) t
    WHERE t.order_id = o.id AND o.idempotency_key LIKE 'plan-order-%'
    """,
    f"""
    INSERT INTO stock_movements
        (product_id, order_id, on_hand_delta, reserved_delta, reason, command_key, created_at)
    SELECT i.product_id, i.order_id, 0, i.qty, 'reserve', 'plan-order-' || i.order_id,
           now() - i.order_id % {ROWS} * interval '1 minute'
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE o.idempotency_key LIKE 'plan-order-%'
    """,
    f"""
    INSERT INTO command_ledger
        (idempotency_key, command_type, fingerprint, status, reason, result, created_at,
         completed_at)
    SELECT 'plan-ledger-' || n, 'place_order', repeat('a', 64),
           CASE WHEN n % 20 = 0 THEN 'rejected' ELSE 'succeeded' END,
           CASE WHEN n % 20 = 0 THEN 'insufficient_stock' END,
           '{{}}'::jsonb, now() - n * interval '10 seconds', now() - n * interval '10 seconds'
    FROM generate_series(1, {ROWS}) n
    """,
]


def fill(connection: Connection) -> None:
    """Insert the data set and ANALYZE the tables (inside the caller's transaction)."""
    connection.execute(text("SET LOCAL statement_timeout = 0"))  # a bulk load, not a command
    # The search GIN indexes have no pending list in production (fastupdate off), which
    # makes a bulk load of 10^5 rows slow; queue the entries for this rolled-back load.
    for index in SEARCH_GIN_INDEXES:
        connection.execute(text(f"ALTER INDEX {index} SET (fastupdate = on)"))
    for statement in STATEMENTS:
        connection.execute(text(statement))
        # Statistics of each table as soon as it is filled: the next statements join
        # it, and planned on the empty tables' statistics (a fresh server, autovacuum
        # not yet round) a join of 10^5 x 10^5 rows became a nested loop of hours.
        connection.execute(text(f"ANALYZE {_target(statement)}"))
    for table in TABLES:
        connection.execute(text(f"ANALYZE {table}"))


def _target(statement: str) -> str:
    """The table an INSERT or UPDATE of the data set writes."""
    match = re.search(r"\b(?:INSERT INTO|UPDATE)\s+(\w+)", statement)
    assert match is not None, statement
    return match.group(1)
