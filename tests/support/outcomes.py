"""Waiting for outcomes and reading the rows tests assert on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from producers.outcomes import CommandStatus, lookup
from tests.support.eventually import eventually


def await_outcome(engine: Engine, key: str, timeout: float = 30.0) -> CommandStatus:
    """The terminal outcome of `key`; fails the test if none arrives in time."""
    return eventually(
        lambda: lookup(engine, key),
        until=lambda status: status.is_terminal,
        what=f"an outcome for {key}",
        timeout=timeout,
    )


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def stock_of(engine: Engine, sku: str) -> tuple[int, int]:
    """(on_hand, reserved) of a product."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT s.on_hand, s.reserved FROM stock_levels s "
                "JOIN products p ON p.id = s.product_id WHERE p.sku = :sku"
            ),
            {"sku": sku},
        ).one()


def movement_totals(engine: Engine, sku: str) -> tuple[int, int]:
    """(sum of on_hand deltas, sum of reserved deltas) of a product's movements."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT coalesce(sum(m.on_hand_delta), 0), coalesce(sum(m.reserved_delta), 0) "
                "FROM stock_movements m JOIN products p ON p.id = m.product_id WHERE p.sku = :sku"
            ),
            {"sku": sku},
        ).one()


def orders_with_key(engine: Engine, key: str) -> int:
    return scalar(engine, "SELECT count(*) FROM orders WHERE idempotency_key = :k", k=key)


def ledger_rows(engine: Engine, key: str) -> int:
    return scalar(engine, "SELECT count(*) FROM command_ledger WHERE idempotency_key = :k", k=key)


def await_outcomes(engine: Engine, keys: list[str], timeout: float = 60.0) -> dict[str, str]:
    """Wait until every key has a terminal outcome; return key -> status.

    Fails the test naming the stragglers if some are still open after `timeout`.
    """
    from tests.support.invariants import TERMINAL, outcome_of_keys

    def still_open() -> dict[str, str]:
        with engine.connect() as connection:
            statuses = outcome_of_keys(connection, keys)
        return {key: status for key, status in statuses.items() if status not in TERMINAL}

    eventually(
        still_open,
        until=lambda open_keys: not open_keys,
        what=f"an outcome for each of {len(keys)} keys (shown: the keys still open)",
        timeout=timeout,
        interval=0.1,
    )
    with engine.connect() as connection:
        return outcome_of_keys(connection, keys)


def deliveries_of(engine: Engine, key: str) -> int:
    """How many deliveries of `key` a worker has started (replays and refusals included):
    `command_deliveries.deliveries`, counted before anything else is done with one."""
    count = scalar(
        engine, "SELECT deliveries FROM command_deliveries WHERE idempotency_key = :k", k=key
    )
    return count or 0


def await_deliveries(engine: Engine, key: str, count: int, timeout: float = 30.0) -> int:
    """Wait until at least `count` deliveries of `key` have been started; return how many."""
    return eventually(
        lambda: deliveries_of(engine, key),
        until=lambda seen: seen >= count,
        what=f"{count} deliveries of {key}",
        timeout=timeout,
    )
