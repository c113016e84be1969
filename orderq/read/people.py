"""Searching people (members, customers) by name, e-mail or phone: one procedure, each
table bringing its own three statements."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Connection, TextClause, text

from orderq.read.cursors import CursorCodec
from orderq.read.keyset import Listing, fetch_page
from orderq.read.matching import (
    QueryKind,
    email_prefix,
    every_word_resembles,
    fuzzy_words,
    kind_of,
    phone_prefixes,
    word_params,
)
from orderq.read.pages import Page, checked_query


@dataclass(frozen=True)
class PeopleSearch:
    """One table's people search. `name_sql` has `{fuzzy}` and `{after}` slots and
    selects a `score`; `email_sql` / `phone_sql` have `{after}` and select `matched`
    (the lower-cased e-mail, the phone's digits key). Rows are aliased `alias`."""

    listing_prefix: str
    alias: str
    name_sql: str
    email_sql: str
    phone_sql: str

    def listing(self, kind: QueryKind) -> Listing:
        if kind == "name":
            return Listing(
                f"{self.listing_prefix}_name", ("score", "id"), (float, int), ("id", "score")
            )
        return Listing(
            f"{self.listing_prefix}_{kind}", ("matched", "id"), (str, int), ("id", "matched")
        )

    def statements(self, kind: QueryKind, words: int = 0) -> tuple[TextClause, TextClause]:
        """(first page, after a cursor) for a query of `kind` (`words` fuzzy words)."""
        return _statements(self, kind, words)

    def search(
        self,
        connection: Connection,
        codec: CursorCodec,
        query: str,
        limit: int,
        cursor: str | None,
        phone_region: str | None,
    ) -> Page:
        query = checked_query(query)
        kind = kind_of(query)
        params: dict[str, str] = {}
        words = 0
        if kind == "name":
            found = fuzzy_words(query)
            params, words = word_params(found), len(found)
        elif kind == "email":
            params = {"pattern": email_prefix(query)}
        else:
            pattern, national_pattern = phone_prefixes(query, phone_region)
            params = {"pattern": pattern, "national_pattern": national_pattern}
        statements = self.statements(kind, words)
        page = fetch_page(
            connection,
            codec,
            self.listing(kind),
            statements,
            {"query": query},
            limit,
            cursor,
            params,
        )
        for result in page.results:
            result["matched_by"] = kind
        return page


@functools.cache
def _statements(search: PeopleSearch, kind: QueryKind, words: int) -> tuple[TextClause, TextClause]:
    a = search.alias
    if kind == "name":
        fuzzy = every_word_resembles(f"orderq_fold({a}.name)", words)
        after = (
            f"AND ({a}.score < :after_score OR ({a}.score = :after_score AND {a}.id > :after_id))"
        )
        return (
            text(search.name_sql.format(fuzzy=fuzzy, after="")),
            text(search.name_sql.format(fuzzy=fuzzy, after=after)),
        )
    sql = search.email_sql if kind == "email" else search.phone_sql
    column = f"lower({a}.email)" if kind == "email" else f"{a}.phone_digits"
    after = f"AND ({column}, {a}.id) > (:after_matched, :after_id)"
    return text(sql.format(after="")), text(sql.format(after=after))
