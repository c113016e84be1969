"""What upstream systems import: the command contract, the publisher, outcome lookup."""

from producers.commands import (
    CancelOrder,
    Command,
    ConfirmPayment,
    InvalidCommand,
    OrderLine,
    PlaceOrder,
    RestockProduct,
    ShipOrder,
    UpsertProduct,
    parse_command,
)
from producers.outcomes import CommandStatus, lookup, wait_for
from producers.publisher import Publisher, PublishError, Receipt

__all__ = [
    "CancelOrder",
    "Command",
    "CommandStatus",
    "ConfirmPayment",
    "InvalidCommand",
    "OrderLine",
    "PlaceOrder",
    "PublishError",
    "Publisher",
    "Receipt",
    "RestockProduct",
    "ShipOrder",
    "UpsertProduct",
    "lookup",
    "parse_command",
    "wait_for",
]
