"""Products: search by SKU prefix or name; a product's stock movements.

- SKU prefix: `ix_products_sku_pattern` (sku text_pattern_ops: LIKE 'MUG%' in any
  collation), OR'd with the name: `ix_products_name_trgm` (trigram word similarity on
  orderq_fold(name)). An exact SKU ranks first, then SKU prefixes, then names.
- movements: `ix_stock_movements_product_id_created_at`, keyset on (created_at, id).
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Connection, TextClause, text

from orderq.read.cursors import CursorCodec
from orderq.read.keyset import Listing, fetch_page, newest_first
from orderq.read.matching import every_word_resembles, fuzzy_words, word_params
from orderq.read.pages import Page, checked_identifier, checked_query, like_prefix

SEARCH = Listing("search_products", ("score", "id"), (float, int), ("id", "score"))
_SEARCH = """
    SELECT p.* FROM (
        SELECT p.id, p.sku, p.name, p.price_cents, s.on_hand, s.reserved,
               s.on_hand - s.reserved AS available,
               (CASE WHEN p.sku = :sku THEN 3 WHEN p.sku LIKE :sku_pattern THEN 2 ELSE 0 END
                + word_similarity(orderq_fold(:query), orderq_fold(p.name)))::float8 AS score
        FROM products p
        JOIN stock_levels s ON s.product_id = p.id
        WHERE p.sku LIKE :sku_pattern OR ({fuzzy})
    ) p
    WHERE true {after}
    ORDER BY p.score DESC, p.id
    LIMIT :limit
"""
_AFTER = "AND (p.score < :after_score OR (p.score = :after_score AND p.id > :after_id))"


@functools.cache
def search_statements(words: int) -> tuple[TextClause, TextClause]:
    """(first page, after a cursor) of the product search for `words` fuzzy words."""
    fuzzy = every_word_resembles("orderq_fold(p.name)", words)
    return (
        text(_SEARCH.format(fuzzy=fuzzy, after="")),
        text(_SEARCH.format(fuzzy=fuzzy, after=_AFTER)),
    )


def search_products(
    connection: Connection, codec: CursorCodec, query: str, limit: int, cursor: str | None
) -> Page:
    """Products whose SKU starts with `query` or whose name resembles it, best first,
    with their stock (`on_hand`, `reserved`, `available`)."""
    query = checked_query(query)
    sku = query.upper()
    words = fuzzy_words(query)
    params = {"sku": sku, "sku_pattern": like_prefix(sku), **word_params(words)}
    statements = search_statements(len(words))
    return fetch_page(
        connection, codec, SEARCH, statements, {"query": query}, limit, cursor, params
    )


MOVEMENTS = Listing("product_movements", ("created_at", "id"), (datetime, int))
_MOVEMENTS = """
    SELECT m.id, m.created_at, m.reason, m.on_hand_delta, m.reserved_delta,
           o.order_number, m.command_key
    FROM stock_movements m
    LEFT JOIN orders o ON o.id = m.order_id
    WHERE m.product_id = (SELECT id FROM products WHERE sku = :sku) {after}
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT :limit
"""
MOVEMENT_STATEMENTS = tuple(
    text(sql) for sql in newest_first(_MOVEMENTS, (("m.created_at", "created_at"), ("m.id", "id")))
)


def product_movements(
    connection: Connection, codec: CursorCodec, sku: str, limit: int, cursor: str | None
) -> Page:
    """A product's stock movements, newest first (reason, deltas, order, command key)."""
    filters = {"sku": checked_identifier("SKU", sku).upper()}
    return fetch_page(connection, codec, MOVEMENTS, MOVEMENT_STATEMENTS, filters, limit, cursor)
