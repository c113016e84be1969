"""Log statements slower than a threshold: duration and shape, never the parameters.

The shape is the SQL text SQLAlchemy sends, which carries placeholders (`%(key)s`),
not values; whitespace is collapsed and the text cut short. Parameters — customer
references, keys, payloads — are never logged.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger("orderq.sql.slow")

_START = "orderq_statement_started"
_SPACE = re.compile(r"\s+")
_NAME = re.compile(
    r"^(?:WITH\b.*?\)\s*)?(SELECT|INSERT INTO|UPDATE|DELETE FROM|ANALYZE|[A-Z]+)\s*(\S+)?",
    re.IGNORECASE | re.DOTALL,
)
SHAPE_LIMIT = 300


def statement_shape(statement: str) -> str:
    """The statement's text on one line, cut to `SHAPE_LIMIT` characters."""
    shape = _SPACE.sub(" ", statement).strip()
    return shape if len(shape) <= SHAPE_LIMIT else shape[: SHAPE_LIMIT - 1] + "…"


def statement_name(shape: str) -> str:
    """A short name such as `UPDATE command_ledger` or `SELECT`, for grouping in logs."""
    match = _NAME.match(shape)
    if not match:
        return shape.split(" ", 1)[0].upper()
    verb = match.group(1).upper()
    target = match.group(2) or ""
    if verb == "SELECT":
        found = re.search(r"\bFROM\s+([\w.\"]+)", shape, re.IGNORECASE)
        target = found.group(1) if found else ""
    return f"{verb} {target}".strip()


def install_slow_statement_log(engine: Engine, threshold_ms: float) -> None:
    """Log every statement on `engine` that takes longer than `threshold_ms` (negative: off)."""
    if threshold_ms < 0:
        return

    @event.listens_for(engine, "before_cursor_execute")
    def _started(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault(_START, []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _finished(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info.get(_START)
        if not started:
            return
        elapsed_ms = (time.perf_counter() - started.pop()) * 1000
        if elapsed_ms >= threshold_ms:
            shape = statement_shape(statement)
            log.warning("slow statement %.1f ms [%s]: %s", elapsed_ms, statement_name(shape), shape)

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        connection = context.connection
        if connection is not None and connection.info.get(_START):
            connection.info[_START].pop()
