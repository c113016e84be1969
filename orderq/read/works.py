"""Work search: full text (title weight A, authors B) plus trigram word similarity for
typos; accents folded on both sides; withdrawn works never show.

Served by two partial GIN indexes (WHERE deleted_at IS NULL), combined by a BitmapOr:
`ix_works_search_vector` (`search_vector @@ websearch_to_tsquery(...)`) and
`ix_works_search_text_trgm` (each query word `<% orderq_work_text(title, authors)`,
see matching.fuzzy_words). Ranking: a full-text match first (1 + ts_rank_cd), then
word similarity of the whole query (0..1) — so
`harry poter` (no full-text match: "poter") still finds *Harry Potter and the
Philosopher's Stone* by trigrams, and `bronte` finds Emily Brontë by full text.
"""

from __future__ import annotations

import functools

from sqlalchemy import Connection, TextClause, text

from orderq.read.cursors import CursorCodec
from orderq.read.keyset import Listing, fetch_page
from orderq.read.matching import every_word_resembles, fuzzy_words, word_params
from orderq.read.pages import Page, checked_query

LISTING = Listing("search_works", ("score", "id"), (float, int), hidden=("id", "score"))

# One statement; the planner ORs the two index conditions: the full-text match, and
# every word of the query resembling a word of the title or authors (trigrams). A
# full-text match ranks first (1 + ts_rank_cd, cheap on the stored vector); only the
# others pay for word_similarity. Available copies are counted for the page's rows only
# (ix_copies_work_id_status).
_SEARCH = """
    SELECT w.id, w.score, w.work_code AS work, w.title, w.authors,
           (SELECT count(*) FROM copies c
            WHERE c.work_id = w.id AND c.status = 'available' AND c.deleted_at IS NULL)
               AS available_copies,
           (SELECT count(*) FROM copies c WHERE c.work_id = w.id AND c.deleted_at IS NULL)
               AS copies
    FROM (
        SELECT w.id, w.work_code, w.title, w.authors,
               (CASE WHEN w.search_vector @@ websearch_to_tsquery('english', orderq_fold(:query))
                     THEN 1 + ts_rank_cd(
                         w.search_vector, websearch_to_tsquery('english', orderq_fold(:query)))
                     ELSE word_similarity(
                         orderq_fold(:query), orderq_work_text(w.title, w.authors))
                END)::float8 AS score
        FROM works w
        WHERE w.deleted_at IS NULL
          AND (w.search_vector @@ websearch_to_tsquery('english', orderq_fold(:query))
               OR ({fuzzy}))
    ) w
    WHERE true {after}
    ORDER BY w.score DESC, w.id
    LIMIT :limit
"""
_AFTER = "AND (w.score < :after_score OR (w.score = :after_score AND w.id > :after_id))"


@functools.cache
def statements(words: int) -> tuple[TextClause, TextClause]:
    """(first page, after a cursor) for a query with `words` fuzzy words."""
    fuzzy = every_word_resembles("orderq_work_text(w.title, w.authors)", words)
    return (
        text(_SEARCH.format(fuzzy=fuzzy, after="")),
        text(_SEARCH.format(fuzzy=fuzzy, after=_AFTER)),
    )


def search_works(
    connection: Connection, codec: CursorCodec, query: str, limit: int, cursor: str | None
) -> Page:
    """Live works matching `query` by title or author, best first: each result has
    `work`, `title`, `authors`, `available_copies` and `copies`."""
    filters = {"query": checked_query(query)}
    words = fuzzy_words(filters["query"])
    return fetch_page(
        connection,
        codec,
        LISTING,
        statements(len(words)),
        filters,
        limit,
        cursor,
        word_params(words),
    )
