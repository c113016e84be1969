"""What the plan of a frequent statement says about it: the recommendations an operator
would write next to a slow query.

For each of the top statements in `pg_stat_statements` (normalized: `$1` instead of
values) the *generic* plan is read without running the statement: `EXPLAIN
(GENERIC_PLAN)` on PostgreSQL 16+, else PREPARE + `plan_cache_mode =
force_generic_plan` + `EXPLAIN EXECUTE` with NULL parameters (a generic plan does not
depend on them). Nothing is executed; each EXPLAIN runs in a savepoint, rolled back.

Recommendations, from the plan's nodes and the table statistics:
- a sequential scan of a large table (with its filter, if any): an index is missing;
- a filter applied after an index scan on a large table: the index lacks a column;
- a sort of many rows: no index gives the order asked for;
- planning time out of proportion to execution time: prepare the statement.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

#: a table with at least this many rows (pg_class.reltuples) is "large"
LARGE_TABLE_ROWS = 10_000
#: planning slower than execution and than this is "out of proportion"
PLANNING_FLOOR_MS = 1.0
_EXPLAINABLE = re.compile(r"^\s*(\(|select|with|insert|update|delete|values|table)\b", re.I)
_PARAMETER = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class Advice:
    """One recommendation: what was seen, where, and what to do."""

    kind: str  # seq_scan | filter_after_index | large_sort | planning_time
    relation: str | None
    detail: str
    recommendation: str


@dataclass
class StatementAnalysis:
    queryid: int
    query: str
    calls: int
    mean_exec_ms: float
    total_exec_ms: float
    mean_plan_ms: float | None
    plan_ms: float | None = None
    top_node: str | None = None
    indexes: list[str] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    unexplained: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["query"] = " ".join(self.query.split())[:500]
        return data


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found, pending = [], [plan]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(node.get("Plans", []))
    return found


def table_rows(connection: Connection) -> dict[str, float]:
    """Estimated rows of every table of the current schema(s) (pg_class.reltuples)."""
    rows = connection.execute(
        text(
            "SELECT c.relname, greatest(c.reltuples, 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
    )
    return {name: float(estimate) for name, estimate in rows}


def advise(
    plan: dict[str, Any],
    rows: dict[str, float],
    *,
    plan_ms: float | None = None,
    mean_exec_ms: float | None = None,
    large: int = LARGE_TABLE_ROWS,
) -> list[Advice]:
    """The recommendations one plan (EXPLAIN FORMAT JSON's "Plan") calls for."""
    advice: list[Advice] = []
    for node in _nodes(plan):
        kind = node.get("Node Type", "")
        relation = node.get("Relation Name")
        size = rows.get(relation or "", 0.0)
        condition = node.get("Filter")
        if kind == "Seq Scan" and size >= large:
            detail = f"sequential scan of {relation} (~{size:,.0f} rows)"
            if condition:
                detail += f" filtered by {condition}"
                fix = f"add an index on {relation} for the filtered column(s) of {condition}"
            else:
                fix = (
                    f"the statement reads all of {relation}: "
                    "add a condition an index can serve, or a LIMIT"
                )
            advice.append(Advice("seq_scan", relation, detail, fix))
        elif (
            kind in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan")
            and condition
            and size >= large
        ):
            index = node.get("Index Name") or "its bitmap index"
            advice.append(
                Advice(
                    "filter_after_index",
                    relation,
                    f"{relation}: rows found through {index} are then filtered by {condition}",
                    f"add the filtered column(s) to {index} (or a partial index on {condition})",
                )
            )
        elif kind in ("Sort", "Incremental Sort") and node.get("Plan Rows", 0) >= large:
            keys = ", ".join(node.get("Sort Key", []))
            advice.append(
                Advice(
                    "large_sort",
                    None,
                    f"sorts ~{node.get('Plan Rows', 0):,} rows by {keys}",
                    f"an index in the order ({keys}) would return rows already sorted",
                )
            )
    if (
        plan_ms is not None
        and mean_exec_ms is not None
        and plan_ms >= PLANNING_FLOOR_MS
        and plan_ms > mean_exec_ms
    ):
        advice.append(
            Advice(
                "planning_time",
                None,
                f"planning takes {plan_ms:.2f} ms, executing {mean_exec_ms:.2f} ms on average",
                "prepare the statement (psycopg prepares a query after it repeats; use server-side "
                "parameters rather than literals) or simplify it (joins, partitions, IN lists)",
            )
        )
    return advice


def generic_plan(connection: Connection, query: str) -> tuple[dict[str, Any], float | None]:
    """The generic plan of a normalized statement and its planning time (ms). Runs in a
    savepoint, rolled back; raises `ValueError` if the statement cannot be explained."""
    if not _EXPLAINABLE.match(query):
        raise ValueError("not a query (utility statement)")
    count = max((int(n) for n in _PARAMETER.findall(query)), default=0)
    version = connection.execute(text("SHOW server_version_num")).scalar()
    savepoint = connection.begin_nested()
    try:
        connection.execute(text("SET LOCAL statement_timeout = '5s'"))
        raw = connection.connection.driver_connection
        if int(version) >= 160000:
            row = raw.execute(f"EXPLAIN (GENERIC_PLAN, SUMMARY, FORMAT JSON) {query}").fetchone()
        else:
            raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            raw.execute(f"PREPARE orderq_plan_advice AS {query}")
            try:
                nulls = ", ".join(["NULL"] * count)
                execute = (
                    f"EXECUTE orderq_plan_advice({nulls})"
                    if count
                    else "EXECUTE orderq_plan_advice"
                )
                row = raw.execute(f"EXPLAIN (SUMMARY, FORMAT JSON) {execute}").fetchone()
            finally:
                raw.execute("DEALLOCATE orderq_plan_advice")
    except (sa_exc.DBAPIError, Exception) as error:
        savepoint.rollback()
        raise ValueError(" ".join(str(error).split())[:200]) from None
    savepoint.rollback()
    document = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return document[0]["Plan"], document[0].get("Planning Time")


_TOP = """
    SELECT queryid, query, calls, mean_exec_time, total_exec_time,
           CASE WHEN total_plan_time > 0 THEN mean_plan_time END AS mean_plan_time
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND queryid IS NOT NULL AND calls >= :min_calls
      AND query !~* :utility
    ORDER BY total_exec_time DESC
    LIMIT :limit
"""


_UTILITY = r"^\s*(explain|prepare|deallocate|analyze|vacuum|set|show|begin|commit|rollback)"


def analyze_top_statements(
    connection: Connection, limit: int = 10, min_calls: int = 1, large: int = LARGE_TABLE_ROWS
) -> list[StatementAnalysis]:
    """The `limit` statements with the most total execution time, each with its generic
    plan's top node, the indexes it reads and the recommendations it calls for.
    Needs pg_stat_statements (see monitoring.statements_unavailable)."""
    rows = table_rows(connection)
    found = connection.execute(
        text(_TOP), {"limit": limit, "min_calls": min_calls, "utility": _UTILITY}
    ).all()
    analyses = []
    for queryid, query, calls, mean_ms, total_ms, mean_plan_ms in found:
        analysis = StatementAnalysis(queryid, query, calls, mean_ms, total_ms, mean_plan_ms)
        try:
            plan, plan_ms = generic_plan(connection, query)
        except ValueError as error:
            analysis.unexplained = str(error)
            analyses.append(analysis)
            continue
        analysis.plan_ms = plan_ms
        analysis.top_node = plan.get("Node Type")
        analysis.indexes = sorted({n["Index Name"] for n in _nodes(plan) if "Index Name" in n})
        planning = mean_plan_ms if mean_plan_ms is not None else plan_ms
        analysis.advice = advise(plan, rows, plan_ms=planning, mean_exec_ms=mean_ms, large=large)
        analyses.append(analysis)
    return analyses
