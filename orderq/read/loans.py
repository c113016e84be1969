"""Loans on the read side: one loan, with its member, copy and work (the HTTP
`GET /v1/loans/{id}`). A member's loans, paged, are in `members`.

Served by the primary keys of loans, members, copies and works.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

_LOAN = text(
    """
    SELECT l.id AS loan_id, m.member_number AS member, c.barcode, w.work_code AS work,
           w.title, l.checked_out_at, l.due_at, l.returned_at, l.renewals, l.overdue_at
    FROM loans l
    JOIN members m ON m.id = l.member_id
    JOIN copies c ON c.id = l.copy_id
    JOIN works w ON w.id = c.work_id
    WHERE l.id = :loan_id
    """
)


def find_loan(connection: Connection, loan_id: int) -> dict[str, Any] | None:
    """One loan (active or returned), or None; `status` is `active` or `returned`."""
    row = connection.execute(_LOAN, {"loan_id": loan_id}).mappings().one_or_none()
    if row is None:
        return None
    return {**row, "status": "returned" if row["returned_at"] is not None else "active"}
