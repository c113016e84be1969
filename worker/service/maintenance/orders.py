"""Order-side maintenance: cancel orders whose payment never came."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from producers.commands import CancelOrder
from worker.adapters.due_rows import unpaid_orders
from worker.service.maintenance.sweeps import CommandSweep, DueCommand
from worker.settings import WorkerSettings


def expiry_key(order_number: str) -> str:
    """The one idempotency key the system ever uses to expire `order_number`."""
    return f"expire:{order_number}"


def _due_expiries(
    connection: Connection, settings: WorkerSettings, after: tuple[Any, ...] | None, limit: int
) -> Sequence[DueCommand]:
    return [
        (
            cursor,
            CancelOrder(key=expiry_key(number), order_number=number, reason="payment_expired"),
        )
        for cursor, number in unpaid_orders(
            connection, settings.unpaid_order_expiry_seconds, after, limit
        )
    ]


EXPIRE_UNPAID_ORDERS = CommandSweep(
    task="expire_unpaid_orders",
    find_due=_due_expiries,
    schedule_setting="schedule_expire_unpaid_orders_seconds",
)
