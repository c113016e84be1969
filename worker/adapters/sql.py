"""Plain SQL on the unit of work's own connection, for the hot paths.

The order and ledger repositories send hand-written statements straight through
psycopg on the session's connection: same transaction as everything else in the unit
of work, a tenth of the client CPU of the ORM's flush (measured by scripts/bench.py).
psycopg prepares statements that repeat, so the server plans each shape once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import Connection

Params = Sequence[Any] | dict[str, Any]


class Sql:
    """Statements on the unit of work's connection, inside its transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]

    def one(self, query: str, params: Params = ()) -> tuple[Any, ...] | None:
        return self.connection.execute(query, params).fetchone()  # type: ignore[arg-type]

    def all(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self.connection.execute(query, params).fetchall()  # type: ignore[arg-type]

    def dicts(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        with self.connection.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(query, params).fetchall()  # type: ignore[arg-type]

    def execute(self, query: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it touched."""
        return self.connection.execute(query, params).rowcount  # type: ignore[arg-type]

    def executemany(self, query: str, rows: Iterable[Params]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(query, list(rows))  # type: ignore[arg-type]

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Send the statements inside in one round trip (errors surface at the end)."""
        with self.connection.pipeline():
            yield
