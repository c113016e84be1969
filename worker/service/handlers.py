"""The registry from command class to handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from producers.commands import Command
from worker.service import loans, orders
from worker.service.context import CommandContext
from worker.service.unit_of_work import UnitOfWork

Handler = Callable[[Any, UnitOfWork, CommandContext], dict[str, Any]]

HANDLERS: dict[type[Command], Handler] = {**orders.HANDLERS, **loans.HANDLERS}

#: command class -> how to answer a redelivery whose ledger row was purged but whose
#: business row (unique on the idempotency key) exists; see executor.execute.
Recovery = Callable[[Any, UnitOfWork], dict[str, Any]]
RECOVERIES: dict[type[Command], Recovery] = {**orders.RECOVERIES, **loans.RECOVERIES}


def handler_for(command: Command) -> Handler:
    return HANDLERS[type(command)]


def recovery_for(command: Command) -> Recovery | None:
    return RECOVERIES.get(type(command))
