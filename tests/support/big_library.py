"""The skeleton of the large loan fixtures the query-plan tests build with one INSERT.

`LIBRARY_CTES` opens a WITH clause that creates one work, `:copies` copies and
`:members` members tagged `:tag`, and exposes their ids as arrays `c.ids` and `m.ids`
(and the work as `work`). A fixture appends its own CTEs or final INSERT after it.
"""

LIBRARY_CTES = """
WITH work AS (
    INSERT INTO works (work_code, title) VALUES (:tag, 'EXPLAIN fixture') RETURNING id
), new_copies AS (
    INSERT INTO copies (work_id, barcode, status)
    SELECT work.id, :tag || '-C' || g, 'on_loan' FROM work, generate_series(1, :copies) g
    RETURNING id
), new_members AS (
    INSERT INTO members (member_number, name, status, loan_limit)
    SELECT :tag || '-M' || g, 'Fixture', 'active', 5 FROM generate_series(1, :members) g
    RETURNING id
), c AS (SELECT array_agg(id ORDER BY id) AS ids FROM new_copies),
   m AS (SELECT array_agg(id ORDER BY id) AS ids FROM new_members)"""
