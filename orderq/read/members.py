"""Members: search by name, e-mail or phone; a member's loans (active or history).

Live members only (deleted_at IS NULL) — every index below is partial on that:
- name: `ix_members_name_trgm` (trigram word similarity on orderq_fold(name));
- e-mail: `ix_members_email` (lower(email) text_pattern_ops: exact or prefix);
- phone: `ix_members_phone_digits` (digits key, exact or prefix; both spellings of an
  international number, see worker/domain/contacts.py);
- loans: `ix_loans_member_id_active` (active: at most the loan limit, sorted in
  memory) and `ix_loans_member_id_checked_out_at` (history, keyset on
  (checked_out_at, id)); the member by number through `uq_members_member_number_live`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, TextClause, text

from orderq.read.cursors import CursorCodec
from orderq.read.errors import InvalidQuery
from orderq.read.keyset import Listing, fetch_page, newest_first
from orderq.read.pages import Page, checked_identifier
from orderq.read.people import PeopleSearch

_COLUMNS = "m.id, m.member_number AS member, m.name, m.email, m.phone, m.status, m.loan_limit"

_BY_NAME = f"""
    SELECT * FROM (
        SELECT {_COLUMNS},
               word_similarity(orderq_fold(:query), orderq_fold(m.name))::float8 AS score
        FROM members m
        WHERE m.deleted_at IS NULL AND ({{fuzzy}})
    ) m
    WHERE true {{after}}
    ORDER BY m.score DESC, m.id
    LIMIT :limit
"""
_BY_EMAIL = f"""
    SELECT {_COLUMNS}, lower(m.email) AS matched
    FROM members m
    WHERE m.deleted_at IS NULL AND lower(m.email) LIKE :pattern {{after}}
    ORDER BY lower(m.email), m.id
    LIMIT :limit
"""
_BY_PHONE = f"""
    SELECT {_COLUMNS}, m.phone_digits AS matched
    FROM members m
    WHERE m.deleted_at IS NULL
      AND (m.phone_digits LIKE :pattern OR m.phone_digits LIKE :national_pattern) {{after}}
    ORDER BY m.phone_digits, m.id
    LIMIT :limit
"""
MEMBERS = PeopleSearch("search_members", "m", _BY_NAME, _BY_EMAIL, _BY_PHONE)


def search_members(
    connection: Connection,
    codec: CursorCodec,
    query: str,
    limit: int,
    cursor: str | None,
    phone_region: str | None = None,
) -> Page:
    """Live members whose name, e-mail or phone matches `query` (which one is decided by
    the query's shape: an @ → e-mail, digits → phone, else name), best match first."""
    return MEMBERS.search(connection, codec, query, limit, cursor, phone_region)


# -- a member's loans ---------------------------------------------------------------------

LoanState = Literal["active", "history"]


def _statements(sql: tuple[str, str]) -> tuple[TextClause, TextClause]:
    return text(sql[0]), text(sql[1])


_LOAN_COLUMNS = """
    l.id, l.checked_out_at, c.barcode, w.work_code AS work, w.title, l.due_at,
    l.returned_at, l.renewals, l.overdue_at
"""
_LOANS = f"""
    SELECT {_LOAN_COLUMNS}
    FROM loans l
    JOIN copies c ON c.id = l.copy_id
    JOIN works w ON w.id = c.work_id
    WHERE l.member_id = (
        SELECT id FROM members WHERE member_number = :member AND deleted_at IS NULL
    ) {{state}} {{{{after}}}}
    ORDER BY l.checked_out_at DESC, l.id DESC
    LIMIT :limit
"""
LOAN_LISTINGS = {
    state: (
        Listing(f"member_loans_{state}", ("checked_out_at", "id"), (datetime, int)),
        _statements(
            newest_first(
                _LOANS.format(state=condition),
                (("l.checked_out_at", "checked_out_at"), ("l.id", "id")),
            )
        ),
    )
    for state, condition in (("active", "AND l.returned_at IS NULL"), ("history", ""))
}


def member_loans(
    connection: Connection,
    codec: CursorCodec,
    member_number: str,
    state: str,
    limit: int,
    cursor: str | None,
) -> Page:
    """A live member's loans, newest checkout first: `active` (not returned) or
    `history` (all of them, returned or not)."""
    if state not in LOAN_LISTINGS:
        raise InvalidQuery(f"loan state {state!r}: expected active or history")
    listing, statements = LOAN_LISTINGS[state]
    filters = {"member": checked_identifier("member number", member_number).upper()}
    return fetch_page(connection, codec, listing, statements, filters, limit, cursor)
