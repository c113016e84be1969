"""Table and index upkeep: bloat estimates, dead tuples, invalid indexes — and the
statements that act on them (VACUUM (ANALYZE), REINDEX INDEX CONCURRENTLY, DROP INDEX
CONCURRENTLY), which must run outside a transaction block.

Bloat is *estimated* from the planner's statistics, without reading the relations
(pgstattuple would be exact but scans them and needs a superuser): the pages a table
or B-tree index would need for its rows at its fill factor, from `reltuples` and the
columns' average widths (`pg_stats`), against the pages it has (`relpages`). Good to
a few tens of percent — enough to find a table or index that has grown to several
times its need; meaningless before the first ANALYZE (then no estimate is given).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, text

BLOCK_HEADER = 24  # page header bytes
TUPLE_HEADER = 23 + 1  # heap tuple header, aligned
ITEM_POINTER = 4
INDEX_TUPLE_HEADER = 8


@dataclass(frozen=True)
class Bloat:
    kind: str  # "table" | "index"
    table: str
    name: str
    bytes: int
    expected_bytes: int
    rows: float

    @property
    def wasted_bytes(self) -> int:
        return max(self.bytes - self.expected_bytes, 0)

    @property
    def wasted_fraction(self) -> float:
        return self.wasted_bytes / self.bytes if self.bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["wasted_bytes"] = self.wasted_bytes
        data["wasted_fraction"] = round(self.wasted_fraction, 3)
        return data


_TABLES = """
    SELECT c.relname, c.relpages, c.reltuples,
           coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions)
                     WHERE option_name = 'fillfactor'), 100) AS fillfactor,
           (SELECT sum(s.avg_width) FROM pg_stats s
            WHERE s.schemaname = n.nspname AND s.tablename = c.relname) AS row_width,
           current_setting('block_size')::int AS block_size
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname = current_schema()
      AND (CAST(:names AS text[]) IS NULL OR c.relname = ANY(CAST(:names AS text[])))
"""
_BTREE_INDEXES = """
    SELECT t.relname, c.relname, c.relpages, c.reltuples,
           coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions)
                     WHERE option_name = 'fillfactor'), 90) AS fillfactor,
           (SELECT sum(coalesce(si.avg_width, st.avg_width,
                                CASE WHEN a.attlen > 0 THEN a.attlen END, 32))
            FROM pg_attribute a
            LEFT JOIN pg_stats si ON si.schemaname = n.nspname AND si.tablename = c.relname
                                 AND si.attname = a.attname
            LEFT JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = t.relname
                                 AND st.attname = a.attname
            WHERE a.attrelid = c.oid AND a.attnum > 0) AS key_width,
           current_setting('block_size')::int AS block_size
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_am am ON am.oid = c.relam
    WHERE am.amname = 'btree' AND n.nspname = current_schema() AND i.indisvalid
      AND (CAST(:names AS text[]) IS NULL OR t.relname = ANY(CAST(:names AS text[])))
"""


def _pages(rows: float, width: float, per_row: int, block: int, fillfactor: int) -> int:
    usable = block * fillfactor / 100 - BLOCK_HEADER
    per_page = max(math.floor(usable / (width + per_row)), 1)
    return max(math.ceil(rows / per_page), 1)


def estimate_bloat(connection: Connection, tables: list[str] | None = None) -> list[Bloat]:
    """Tables and B-tree indexes of the current schema (or of `tables`) with their
    size and estimated need, largest waste first. Relations never analyzed are left out."""
    found = []
    params = {"names": tables}
    for name, pages, rows, fillfactor, width, block in connection.execute(text(_TABLES), params):
        if width is None or rows < 0:
            continue
        aligned = math.ceil(float(width) / 8) * 8
        expected = _pages(rows, aligned, TUPLE_HEADER + ITEM_POINTER, block, fillfactor)
        found.append(Bloat("table", name, name, pages * block, expected * block, rows))
    for table, name, pages, rows, fillfactor, width, block in connection.execute(
        text(_BTREE_INDEXES), params
    ):
        if width is None or rows < 0:
            continue
        aligned = math.ceil(float(width) / 8) * 8
        expected = _pages(rows, aligned, INDEX_TUPLE_HEADER + ITEM_POINTER, block, fillfactor) + 1
        found.append(Bloat("index", table, name, pages * block, expected * block, rows))
    return sorted(found, key=lambda b: (-b.wasted_bytes, b.name))


_DEAD = """
    SELECT relname, n_live_tup, n_dead_tup
    FROM pg_stat_user_tables
    WHERE schemaname = current_schema()
      AND n_dead_tup >= :min_dead
      AND n_dead_tup >= :fraction * (n_live_tup + n_dead_tup)
      AND (CAST(:names AS text[]) IS NULL OR relname = ANY(CAST(:names AS text[])))
    ORDER BY n_dead_tup DESC, relname
    LIMIT :limit
"""


def tables_with_dead_rows(
    connection: Connection, min_dead: int, fraction: float, limit: int, tables: list[str] | None
) -> list[dict[str, Any]]:
    """Tables past the dead-row threshold (both the count and the share), most first."""
    rows = connection.execute(
        text(_DEAD), {"min_dead": min_dead, "fraction": fraction, "limit": limit, "names": tables}
    )
    return [{"table": t, "live": live, "dead": dead} for t, live, dead in rows]


_INVALID = """
    SELECT t.relname, c.relname
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT i.indisvalid AND n.nspname = current_schema()
      AND (CAST(:names AS text[]) IS NULL OR t.relname = ANY(CAST(:names AS text[])))
      -- an index being built right now is invalid too: leave it to its builder
      AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid)
    ORDER BY c.relname
"""


def invalid_indexes(connection: Connection, tables: list[str] | None) -> list[tuple[str, str]]:
    """(table, index) of every invalid index not being built at this moment."""
    return [(t, i) for t, i in connection.execute(text(_INVALID), {"names": tables})]


def is_reindex_leftover(index: str) -> bool:
    """A REINDEX CONCURRENTLY that failed leaves `<name>_ccnew[N]` (the copy being
    built) or `<name>_ccold[N]` behind: those are dropped, not rebuilt."""
    stem = index.rstrip("0123456789")
    return stem.endswith("_ccnew") or stem.endswith("_ccold")


def quoted(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def vacuum_analyze(connection: Connection, table: str) -> None:
    """VACUUM (ANALYZE) one table (autocommit connection; reads and writes go on)."""
    connection.execute(text(f"VACUUM (ANALYZE) {quoted(connection, table)}"))


def reindex_concurrently(connection: Connection, index: str) -> None:
    """Rebuild one index without blocking writes (autocommit connection)."""
    connection.execute(text(f"REINDEX INDEX CONCURRENTLY {quoted(connection, index)}"))


def drop_concurrently(connection: Connection, index: str) -> None:
    connection.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {quoted(connection, index)}"))
