"""Running commands in-process through the real runner (the worker's code path)."""

from __future__ import annotations

from producers.commands import Command, PlaceOrder, RestockProduct, UpsertProduct
from tests.support.ids import unique
from worker.service.outcome import Outcome
from worker.service.runner import CommandRunner, RetryLater


def run(runner: CommandRunner, command: Command) -> Outcome:
    """Run `command` as a worker would; fail the test if it asks to be retried."""
    result = runner.run(command.message(), command.type)
    assert not isinstance(result, RetryLater), f"{command.key} wants a retry: {result.error}"
    return result


def new_product(runner: CommandRunner, stock: int, price_cents: int = 500) -> str:
    """Create a product with `stock` units on hand; return its SKU."""
    sku = unique("SKU")
    assert (
        run(
            runner, UpsertProduct(key=unique("up"), sku=sku, name="Thing", price_cents=price_cents)
        ).status
        == "succeeded"
    )
    if stock:
        assert (
            run(runner, RestockProduct(key=unique("rs"), sku=sku, qty=stock)).status == "succeeded"
        )
    return sku


def order_for(sku: str, qty: int = 1, key: str | None = None) -> PlaceOrder:
    return PlaceOrder(
        key=key or unique("order"), customer_ref="cust-1", lines=[{"sku": sku, "qty": qty}]
    )
