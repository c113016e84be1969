"""Customers: search by name, e-mail, phone or exact reference.

A customer is the `customer_ref` orders carry (a row in `customers`, created by the
customer's first place_order), with the contact details place_order commands bring:
- name: `ix_customers_name_trgm` (trigram word similarity on orderq_fold(name)), OR'd
  with the exact reference (`uq_customers_customer_ref`);
- e-mail: `ix_customers_email` (lower(email) text_pattern_ops: exact or prefix);
- phone: `ix_customers_phone_digits` (digits key, exact or prefix).
"""

from __future__ import annotations

import functools

from sqlalchemy import Connection, TextClause, text

from orderq.read.cursors import CursorCodec
from orderq.read.keyset import Listing, fetch_page
from orderq.read.matching import (
    email_prefix,
    every_word_resembles,
    fuzzy_words,
    kind_of,
    phone_prefixes,
    word_params,
)
from orderq.read.pages import Page, checked_query

_COLUMNS = (
    "c.id, c.customer_ref AS customer, c.name, c.email, c.phone, c.created_at AS first_order_at"
)

_BY_NAME = f"""
    SELECT * FROM (
        SELECT {_COLUMNS},
               (CASE WHEN c.customer_ref = :query THEN 2 ELSE 0 END
                + coalesce(word_similarity(orderq_fold(:query), orderq_fold(c.name)), 0)
               )::float8 AS score
        FROM customers c
        WHERE c.customer_ref = :query OR ({{fuzzy}})
    ) c
    WHERE true {{after}}
    ORDER BY c.score DESC, c.id
    LIMIT :limit
"""
_BY_EMAIL = f"""
    SELECT {_COLUMNS}, lower(c.email) AS matched
    FROM customers c
    WHERE lower(c.email) LIKE :pattern {{after}}
    ORDER BY lower(c.email), c.id
    LIMIT :limit
"""
_BY_PHONE = f"""
    SELECT {_COLUMNS}, c.phone_digits AS matched
    FROM customers c
    WHERE (c.phone_digits LIKE :pattern OR c.phone_digits LIKE :national_pattern) {{after}}
    ORDER BY c.phone_digits, c.id
    LIMIT :limit
"""

BY_NAME = Listing("search_customers_name", ("score", "id"), (float, int), ("id", "score"))
_AFTER_SCORE = "AND (c.score < :after_score OR (c.score = :after_score AND c.id > :after_id))"


@functools.cache
def by_name(words: int) -> tuple[TextClause, TextClause]:
    """(first page, after a cursor) of the name search for `words` fuzzy words."""
    fuzzy = every_word_resembles("orderq_fold(c.name)", words)
    return (
        text(_BY_NAME.format(after="", fuzzy=fuzzy)),
        text(_BY_NAME.format(after=_AFTER_SCORE, fuzzy=fuzzy)),
    )


SEARCHES = {
    "email": (
        Listing("search_customers_email", ("matched", "id"), (str, int), ("id", "matched")),
        (
            text(_BY_EMAIL.format(after="")),
            text(
                _BY_EMAIL.format(after="AND (lower(c.email), c.id) > (:after_matched, :after_id)")
            ),
        ),
    ),
    "phone": (
        Listing("search_customers_phone", ("matched", "id"), (str, int), ("id", "matched")),
        (
            text(_BY_PHONE.format(after="")),
            text(
                _BY_PHONE.format(after="AND (c.phone_digits, c.id) > (:after_matched, :after_id)")
            ),
        ),
    ),
}


def search_customers(
    connection: Connection,
    codec: CursorCodec,
    query: str,
    limit: int,
    cursor: str | None,
    phone_region: str | None = None,
) -> Page:
    """Customers whose name, e-mail or phone matches `query` (an @ → e-mail, digits →
    phone, else name — or the exact customer reference), best match first."""
    query = checked_query(query)
    kind = kind_of(query)
    params: dict[str, str] = {}
    if kind == "name":
        words = fuzzy_words(query)
        listing, statements = BY_NAME, by_name(len(words))
        params = word_params(words)
    else:
        listing, statements = SEARCHES[kind]
    if kind == "email":
        params = {"pattern": email_prefix(query)}
    elif kind == "phone":
        pattern, national_pattern = phone_prefixes(query, phone_region)
        params = {"pattern": pattern, "national_pattern": national_pattern}
    page = fetch_page(
        connection, codec, listing, statements, {"query": query}, limit, cursor, params
    )
    for result in page.results:
        result["matched_by"] = kind
    return page
