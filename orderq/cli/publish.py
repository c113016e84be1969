"""`orderq publish …` and `orderq publish-file`: validate, then send to the workers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orderq.cli.console import console, err_console, fail, resolved_settings
from orderq.cli.values import describe_for_flags, parse_line, parse_price
from producers.commands import (
    CancelOrder,
    Command,
    ConfirmPayment,
    InvalidCommand,
    PlaceOrder,
    RestockProduct,
    ShipOrder,
    UpsertProduct,
    parse_command,
)
from producers.publisher import Publisher, PublishError

publish_app = typer.Typer(
    help="Publish one command. Every command needs an idempotency --key.",
    no_args_is_help=True,
)

KeyOption = Annotated[
    str, typer.Option("--key", help="Idempotency key (reuse it to retry safely).")
]
SkuOption = Annotated[str, typer.Option("--sku", help="Product SKU, e.g. MUG-1.")]
OrderOption = Annotated[str, typer.Option("--order", help="Order number, e.g. ORD-000042.")]


def build_command(factory: Callable[..., Command], **fields: Any) -> Command:
    try:
        return factory(**fields)
    except ValidationError as error:
        fail(describe_for_flags(error))


def send_command(command: Command) -> None:
    settings = resolved_settings()
    try:
        with Publisher(settings) as publisher:
            receipt = publisher.publish(command)
    except PublishError as error:
        fail(str(error), code=1)
    except Exception as error:  # database unreachable while recording "queued"
        fail(f"could not record {command.key}: {error.__class__.__name__}: {error}", code=1)
    console.print(
        f"published [bold]{command.type}[/] key=[bold]{receipt.key}[/] to {receipt.queue} "
        f"— check with: orderq status {receipt.key} --wait 10",
        highlight=False,
    )


@publish_app.command("upsert-product")
def upsert_product(
    key: KeyOption,
    sku: SkuOption,
    name: Annotated[str, typer.Option("--name", help="Product name.")],
    price: Annotated[str, typer.Option("--price", help="Unit price, e.g. 12.50.")],
) -> None:
    """Create a product (with empty stock) or change its name and price."""
    try:
        cents = parse_price(price)
    except ValueError as error:
        fail(str(error))
    send_command(build_command(UpsertProduct, key=key, sku=sku, name=name, price_cents=cents))


@publish_app.command("restock")
def restock(
    key: KeyOption,
    sku: SkuOption,
    qty: Annotated[int, typer.Option("--qty", help="Units received (> 0).")],
) -> None:
    """Add received units to a product's stock."""
    send_command(build_command(RestockProduct, key=key, sku=sku, qty=qty))


@publish_app.command("place-order")
def place_order(
    key: KeyOption,
    customer: Annotated[str, typer.Option("--customer", help="Customer reference.")],
    line: Annotated[list[str], typer.Option("--line", help="SKU:QTY; repeat for more lines.")],
) -> None:
    """Reserve stock for every line and create the order (or reject it whole)."""
    try:
        lines = [parse_line(value) for value in line]
    except ValueError as error:
        fail(str(error))
    send_command(build_command(PlaceOrder, key=key, customer_ref=customer, lines=lines))


@publish_app.command("confirm-payment")
def confirm_payment(key: KeyOption, order: OrderOption) -> None:
    """Mark an order paid (placed -> paid)."""
    send_command(build_command(ConfirmPayment, key=key, order_number=order))


@publish_app.command("ship-order")
def ship_order(key: KeyOption, order: OrderOption) -> None:
    """Ship a paid order; its reserved stock leaves the building."""
    send_command(build_command(ShipOrder, key=key, order_number=order))


@publish_app.command("cancel-order")
def cancel_order(key: KeyOption, order: OrderOption) -> None:
    """Cancel a placed or paid order; its reserved stock is released."""
    send_command(build_command(CancelOrder, key=key, order_number=order))


def _numbered_lines(stream: TextIO) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield number, raw


def _parse_line(raw: str) -> Command:
    try:
        message = json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidCommand(f"invalid JSON ({error.msg} at column {error.colno})") from None
    return parse_command(message)


def publish_file(
    source: Annotated[
        str, typer.Argument(metavar="FILE|-", help="JSON-lines file of commands, or - for stdin.")
    ],
) -> None:
    """Publish a stream of JSON-lines commands ({"type": "place_order", "key": …}).

    Lines that fail validation are reported by line number; the rest are published.
    Exits 1 if any line was refused.
    """
    if source == "-":
        stream: TextIO = sys.stdin
        total = None
    else:
        path = Path(source)
        if not path.is_file():
            fail(f"{source}: no such file")
        stream = path.open(encoding="utf-8")
        total = sum(1 for raw in path.open(encoding="utf-8") if raw.strip())
    settings = resolved_settings()
    published, refused = 0, []
    progress = Progress(
        TextColumn("publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    try:
        with Publisher(settings) as publisher, progress:
            task = progress.add_task("publish", total=total)
            for number, raw in _numbered_lines(stream):
                try:
                    publisher.publish(_parse_line(raw))
                    published += 1
                except InvalidCommand as error:
                    refused.append(f"line {number}: {error.problem}")
                    progress.console.print(
                        f"[yellow]line {number}:[/] {error.problem}", highlight=False
                    )
                progress.advance(task)
    except PublishError as error:
        fail(f"{error} (published {published} before stopping)", code=1)
    finally:
        if stream is not sys.stdin:
            stream.close()
    console.print(f"published {published} command(s); {len(refused)} line(s) refused")
    if refused:
        raise typer.Exit(1)
