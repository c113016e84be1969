"""Reading query plans: which nodes a statement's `EXPLAIN` has."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text


def plan_nodes(connection: Connection, sql: str, params: dict[str, Any] | None = None) -> list:
    """Every node of `sql`'s plan (`EXPLAIN (FORMAT JSON)`), flattened."""
    [[document]] = connection.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), params or {}).all()
    return flatten(document)


def flatten(document: Any) -> list:
    """Every node of an `EXPLAIN (FORMAT JSON)` result (parsed or as text)."""
    plan = (document if isinstance(document, list) else json.loads(document))[0]["Plan"]
    nodes, pending = [], [plan]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", []))
    return nodes


def index_names(connection: Connection, sql: str, params: dict[str, Any] | None = None) -> set:
    """The indexes `sql`'s plan reads."""
    return {n["Index Name"] for n in plan_nodes(connection, sql, params) if "Index Name" in n}
