"""What a demo scenario is: waves to publish, then a summary and checks read from the
database. `orderq demo` runs every scenario in `orderq.demo.SCENARIOS` in turn."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, text

from orderq.demo.waves import Wave
from producers.command_log import CommandLog, LedgerEntry, LedgerStatus


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


def command_log(connection: Connection) -> CommandLog:
    """The command log on the demo's connection (every ledger read goes through it)."""
    return CommandLog(connection.connection.driver_connection)  # type: ignore[arg-type]


def label(entry: LedgerEntry | None) -> str:
    """`succeeded`, the rejection's reason, or `no outcome`."""
    if entry is None:
        return "no outcome"
    return entry.reason or entry.status


def rejections(entries: dict[str, LedgerEntry]) -> list[tuple[str, int]]:
    """(reason, how many) for the rejected ones, most frequent first."""
    counts = Counter(e.reason or "" for e in entries.values() if e.status == LedgerStatus.REJECTED)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def repeat_deliveries(counts: dict[str, int]) -> int:
    """Deliveries beyond the first, over all keys."""
    return sum(count - 1 for count in counts.values() if count > 1)


def outcome_mismatches(connection: Connection, keys: str, table: str) -> int:
    """Keys (LIKE `keys`) whose stored outcome and business row disagree: a succeeded
    command without its row, or a row for a command that did not succeed."""
    command_type = _CREATED_BY[table]
    decided = {
        key: entry
        for key, entry in command_log(connection).decided_entries_like(keys).items()
        if entry.command_type == command_type
    }
    with_rows = set(
        connection.execute(
            text(f"SELECT idempotency_key FROM {table} WHERE idempotency_key LIKE :keys"),
            {"keys": keys},
        ).scalars()
    )
    return sum(
        (entry.status == LedgerStatus.SUCCEEDED) != (key in with_rows)
        for key, entry in decided.items()
    )
