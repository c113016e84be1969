"""COPY rows into PostgreSQL, reporting progress as they go."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg

Progress = Callable[[str, int], None]


def copy_rows(
    connection: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    progress: Progress,
    label: str,
    every: int = 5_000,
) -> int:
    """`COPY table (columns) FROM STDIN` with `rows`; return how many were written."""
    written = pending = 0
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[arg-type]
        for row in rows:
            copy.write_row(row)
            written += 1
            pending += 1
            if pending >= every:
                progress(label, pending)
                pending = 0
    if pending:
        progress(label, pending)
    return written
