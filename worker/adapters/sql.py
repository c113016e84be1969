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
    """Statements on the unit of work's connection, inside its transaction.

    `defer` keeps a statement without a result (a SAVEPOINT) to go out with the next
    one, in the same round trip.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
        self._deferred: list[str] = []

    def defer(self, statement: str) -> None:
        """Send `statement` (no parameters, no result) with the next statement; one
        already waiting is not repeated (nothing happened in between)."""
        if statement not in self._deferred:
            self._deferred.append(statement)

    def cancel_deferred(self, statement: str) -> bool:
        """Drop `statement` if it is still waiting to go out; True if it was."""
        if statement in self._deferred:
            self._deferred.remove(statement)
            return True
        return False

    def send_deferred(self) -> None:
        """Send the deferred statements now (before SQL that does not go through here)."""
        if self._deferred:
            with self.connection.pipeline():
                self._send_deferred()

    def _send_deferred(self) -> None:
        for statement in self._deferred:
            self.connection.execute(statement)  # type: ignore[arg-type]
        self._deferred.clear()

    def _cursor(self, query: str, params: Params) -> psycopg.Cursor[Any]:
        if not self._deferred:
            return self.connection.execute(query, params)  # type: ignore[arg-type]
        with self.connection.pipeline():
            self._send_deferred()
            cursor = self.connection.execute(query, params)  # type: ignore[arg-type]
        return cursor

    def one(self, query: str, params: Params = ()) -> tuple[Any, ...] | None:
        return self._cursor(query, params).fetchone()

    def all(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self._cursor(query, params).fetchall()

    def all_in_one_trip(self, statements: Sequence[tuple[str, Params]]) -> list[list[Any]]:
        """Each statement's rows; all of them sent in one round trip, run in order."""
        with self.connection.pipeline():
            self._send_deferred()
            cursors = [self.connection.execute(q, p) for q, p in statements]  # type: ignore[arg-type]
        return [cursor.fetchall() for cursor in cursors]

    def dicts(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        self.send_deferred()
        with self.connection.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(query, params).fetchall()  # type: ignore[arg-type]

    def execute(self, query: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it touched."""
        return self._cursor(query, params).rowcount

    def executemany(self, query: str, rows: Iterable[Params]) -> None:
        self.send_deferred()
        with self.connection.cursor() as cursor:
            cursor.executemany(query, list(rows))  # type: ignore[arg-type]

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Send the statements inside in one round trip (errors surface at the end)."""
        with self.connection.pipeline():
            self._send_deferred()
            yield
