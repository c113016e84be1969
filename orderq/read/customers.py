"""Customers: search by name, e-mail, phone or exact reference.

A customer is the `customer_ref` orders carry (a row in `customers`, created by the
customer's first place_order), with the contact details place_order commands bring:
- name: `ix_customers_name_trgm` (trigram word similarity on orderq_fold(name)), OR'd
  with the exact reference (`uq_customers_customer_ref`);
- e-mail: `ix_customers_email` (lower(email) text_pattern_ops: exact or prefix);
- phone: `ix_customers_phone_digits` (digits key, exact or prefix).
"""

from __future__ import annotations

from sqlalchemy import Connection

from orderq.read.cursors import CursorCodec
from orderq.read.pages import Page
from orderq.read.people import PeopleSearch

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

CUSTOMERS = PeopleSearch("search_customers", "c", _BY_NAME, _BY_EMAIL, _BY_PHONE)


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
    return CUSTOMERS.search(connection, codec, query, limit, cursor, phone_region)
