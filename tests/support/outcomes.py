"""Waiting for outcomes and reading the rows tests assert on."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, text

from producers.outcomes import CommandStatus, wait_for


def await_outcome(engine: Engine, key: str, timeout: float = 30.0) -> CommandStatus:
    """The terminal outcome of `key`; fails the test if none arrives in time."""
    status = wait_for(engine, key, timeout, poll=0.05)
    assert status.is_terminal, f"{key} still {status.status} after {timeout}s"
    return status


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

    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            statuses = outcome_of_keys(connection, keys)
        open_keys = {key: status for key, status in statuses.items() if status not in TERMINAL}
        if not open_keys:
            return statuses
        if time.monotonic() >= deadline:
            sample = dict(list(open_keys.items())[:5])
            raise AssertionError(
                f"{len(open_keys)} keys without an outcome after {timeout}s: {sample}"
            )
        time.sleep(0.1)
