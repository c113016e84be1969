"""What a demo scenario is: waves to publish, then a summary and checks read from the
database. `orderq demo` runs every scenario in `producers.demo.SCENARIOS` in turn."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, text

from producers.demo.waves import Wave


@dataclass(frozen=True)
class DemoRun:
    """One `orderq demo` run: every key and SKU it makes carries its tag, so runs never
    collide and every number can be read back for this run alone."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))

    def key(self, name: str) -> str:
        return f"demo-{self.tag}-{name}"

    def sku(self, name: str) -> str:
        return f"DEMO-{self.tag.upper()}-{name}"

    @property
    def keys(self) -> str:
        """A LIKE pattern matching this run's idempotency keys."""
        return f"demo-{self.tag}-%"

    @property
    def skus(self) -> str:
        """A LIKE pattern matching this run's SKUs."""
        return f"DEMO-{self.tag.upper()}-%"


@dataclass(frozen=True)
class Row:
    """One line of the summary table: what, how many (from the database), and why."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Check:
    """One invariant, verified by a query."""

    name: str
    passed: bool
    detail: str


class Scenario(Protocol):
    """A part of the demo (orders; loans once they exist)."""

    title: str

    def waves(self) -> Sequence[Wave]: ...

    def summary(self, connection: Connection) -> Sequence[Row]: ...

    def checks(self, connection: Connection) -> Sequence[Check]: ...


#: business table -> the command that creates its rows (unique on idempotency_key)
_CREATED_BY = {"orders": "place_order", "loans": "checkout_copy"}


def outcome_mismatches(connection: Connection, keys: str, table: str) -> int:
    """Keys (LIKE `keys`) whose stored outcome and business row disagree: a succeeded
    command without its row, or a row for a command that did not succeed."""
    return (
        connection.execute(
            text(
                f"""
                SELECT count(*) FROM command_ledger l
                WHERE l.idempotency_key LIKE :keys AND l.command_type = :command_type
                  AND (l.status = 'succeeded') <> EXISTS (
                      SELECT 1 FROM {table} b WHERE b.idempotency_key = l.idempotency_key)
                """
            ),
            {"keys": keys, "command_type": _CREATED_BY[table]},
        ).scalar()
        or 0
    )
