"""Read-only views of the database's health: connections, sizes, cache, indexes, statements.

Shared by `orderq db report` and the maintenance tasks. Every query reads the
statistics views of the current database only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from producers.command_log import CommandLog

_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"


def rows_as_dicts(connection: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(text(sql), params)]


# -- connections, sizes, cache ------------------------------------------------------------


def connections_by_state(connection: Connection) -> list[dict[str, Any]]:
    """Connections to this database grouped by state and application."""
    return rows_as_dicts(
        connection,
        """
        SELECT coalesce(state, 'background') AS state,
               coalesce(nullif(application_name, ''), '-') AS application,
               count(*) AS connections,
               round(extract(epoch FROM max(now() - xact_start))::numeric, 1)
                   AS oldest_transaction_s
        FROM pg_stat_activity
        WHERE datname = current_database()
        GROUP BY 1, 2
        ORDER BY connections DESC, state, application
        """,
    )


def table_sizes(connection: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The largest tables: rows, heap, index and total bytes."""
    return rows_as_dicts(
        connection,
        """
        SELECT relname AS table, n_live_tup AS rows,
               pg_table_size(relid) AS table_bytes,
               pg_indexes_size(relid) AS index_bytes,
               pg_total_relation_size(relid) AS total_bytes
        FROM pg_stat_user_tables
        ORDER BY pg_total_relation_size(relid) DESC, relname
        LIMIT :limit
        """,
        limit=limit,
    )


def cache_hit_ratios(connection: Connection) -> dict[str, float | None]:
    """Share of table and index block reads served from shared buffers (None: no reads yet)."""
    row = connection.execute(
        text(
            """
            SELECT sum(heap_blks_hit), sum(heap_blks_read), sum(idx_blks_hit), sum(idx_blks_read)
            FROM pg_statio_user_tables
            """
        )
    ).one()
    heap_hit, heap_read, idx_hit, idx_read = (int(value or 0) for value in row)

    def ratio(hit: int, read: int) -> float | None:
        return round(hit / (hit + read), 4) if hit + read else None

    return {"tables": ratio(heap_hit, heap_read), "indexes": ratio(idx_hit, idx_read)}


# -- indexes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexInfo:
    schema: str
    table: str
    index: str
    scans: int
    bytes: int
    unique: bool
    valid: bool
    keys: str  # pg_index.indkey: attribute numbers, "0" for an expression
    opclasses: str
    expressions: str | None
    predicate: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for internal in ("keys", "opclasses", "expressions", "predicate"):
            data.pop(internal)
        return data


def indexes(connection: Connection) -> list[IndexInfo]:
    """Every index in the user schemas with its usage, size and definition keys."""
    rows = connection.execute(
        text(
            f"""
            SELECT n.nspname, t.relname, c.relname,
                   coalesce(s.idx_scan, 0), pg_relation_size(c.oid),
                   i.indisunique, i.indisvalid, i.indkey::text, i.indclass::text,
                   pg_get_expr(i.indexprs, i.indrelid), pg_get_expr(i.indpred, i.indrelid)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
            WHERE {_USER_SCHEMAS}
            ORDER BY n.nspname, t.relname, c.relname
            """
        )
    )
    return [IndexInfo(*row) for row in rows]


def index_health(connection: Connection) -> dict[str, list[dict[str, Any]]]:
    """Invalid indexes (a failed CONCURRENTLY build), unused ones (no scan since the
    statistics were reset; unique indexes are exempt, they enforce a rule) and
    duplicates (same definition, or a non-unique index whose columns lead another)."""
    found = indexes(connection)
    invalid = [ix.as_dict() for ix in found if not ix.valid]
    unused = [ix.as_dict() for ix in found if ix.valid and not ix.unique and ix.scans == 0]
    duplicates = []
    for ix in found:
        for other in found:
            if other is ix or (ix.schema, ix.table) != (other.schema, other.table):
                continue
            if _redundant(ix, other):
                duplicates.append({**ix.as_dict(), "covered_by": other.index})
                break
    return {"invalid": invalid, "unused": unused, "duplicate": duplicates}


def _redundant(ix: IndexInfo, other: IndexInfo) -> bool:
    """`ix` adds nothing that `other` does not already give."""
    if not ix.valid or not other.valid or ix.unique:
        return False
    if (ix.expressions, ix.predicate) != (other.expressions, other.predicate):
        return False
    keys, other_keys = ix.keys.split(), other.keys.split()
    classes, other_classes = ix.opclasses.split(), other.opclasses.split()
    if "0" in keys or len(keys) > len(other_keys):
        return False
    same_prefix = other_keys[: len(keys)] == keys and other_classes[: len(classes)] == classes
    if not same_prefix:
        return False
    if len(keys) == len(other_keys) and not other.unique:
        return ix.index > other.index  # exact twins: report only one of the pair
    return True


# -- pg_stat_statements -------------------------------------------------------------------

EXTENSION = "pg_stat_statements"


def statements_unavailable(connection: Connection) -> str | None:
    """Why `pg_stat_statements` cannot be read here, or None when it can."""
    schema = connection.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = :name"
        ),
        {
            "name": EXTENSION,
        },
    ).scalar()
    if schema is None:
        shipped = connection.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = :name"), {"name": EXTENSION}
        ).scalar()
        if not shipped:
            return (
                "pg_stat_statements is not available on this PostgreSQL server (its contrib "
                "package is not installed on the server): "
                "statement statistics are skipped"
            )
        return (
            "pg_stat_statements is not installed in this database: run "
            "CREATE EXTENSION pg_stat_statements (the server also needs "
            "shared_preload_libraries = 'pg_stat_statements'); statement statistics are skipped"
        )
    try:
        with connection.begin_nested():
            connection.execute(text(f'SELECT 1 FROM "{schema}".pg_stat_statements LIMIT 1'))
    except sa_exc.DBAPIError as error:
        if isinstance(error.orig, psycopg.errors.ObjectNotInPrerequisiteState):
            return (
                "pg_stat_statements is installed but not loaded: add it to "
                "shared_preload_libraries and restart PostgreSQL; "
                "statement statistics are skipped"
            )
        raise
    return None


def top_statements(connection: Connection, limit: int) -> list[dict[str, Any]]:
    """This database's statements with the most total execution time (normalized text:
    constants appear as $1, $2 — no parameter values)."""
    return rows_as_dicts(
        connection,
        """
        SELECT queryid, query, calls, total_exec_time AS total_exec_ms,
               mean_exec_time AS mean_exec_ms, rows
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND queryid IS NOT NULL
        ORDER BY total_exec_time DESC
        LIMIT :limit
        """,
        limit=limit,
    )


# -- the whole report ---------------------------------------------------------------------


def command_backlog(connection: Connection, stuck_after_seconds: float) -> dict[str, Any]:
    """Dead letters (failed, discarded) and accepted commands with no outcome for long."""
    counts = CommandLog(connection.connection.driver_connection).counts(stuck_after_seconds)
    return asdict(counts)


def database_report(
    connection: Connection, limit: int, stuck_after_seconds: float
) -> dict[str, Any]:
    """Everything `orderq db report` shows, as one JSON-ready mapping."""
    reason = statements_unavailable(connection)
    statements = {
        "available": reason is None,
        "reason": reason,
        "slowest": [] if reason else _slowest(connection, limit),
    }
    server = connection.execute(
        text("SELECT current_database(), current_setting('server_version')")
    ).one()
    return {
        "database": server[0],
        "server_version": server[1],
        "connections": connections_by_state(connection),
        "statements": statements,
        "indexes": {
            **index_health(connection),
            "largest": [ix.as_dict() for ix in _largest(indexes(connection), limit)],
        },
        "tables": table_sizes(connection, limit),
        "cache_hit_ratio": cache_hit_ratios(connection),
        "commands": command_backlog(connection, stuck_after_seconds),
    }


def _slowest(connection: Connection, limit: int) -> list[dict[str, Any]]:
    return rows_as_dicts(
        connection,
        """
        SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query, calls,
               round(mean_exec_time::numeric, 3) AS mean_ms,
               round(total_exec_time::numeric, 1) AS total_ms, rows
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY mean_exec_time DESC
        LIMIT :limit
        """,
        limit=limit,
    )


def _largest(found: list[IndexInfo], limit: int) -> list[IndexInfo]:
    return sorted(found, key=lambda ix: (-ix.bytes, ix.index))[:limit]
