"""`orderq publish …` and `orderq publish-file`: validate, then send to the workers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orderq.cli import values
from orderq.cli.command_lines import parse_line, read_lines
from orderq.cli.console import (
    FAILED,
    console,
    describe_failure,
    err_console,
    fail,
    resolved_settings,
)
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
)
from producers.publisher import Publisher, PublishError

publish_app = typer.Typer(
    help="Publish one command. Every command needs an idempotency --key.",
    no_args_is_help=True,
)

KeyOption = Annotated[
    str,
    typer.Option(
        "--key", metavar="KEY", help="Idempotency key: publish again with it to retry safely."
    ),
]
SkuOption = Annotated[str, typer.Option("--sku", metavar="SKU", help="Product SKU, e.g. MUG-1.")]
OrderOption = Annotated[
    str,
    typer.Option(
        "--order",
        metavar="ORDER",
        parser=values.parse_order_number,
        help="Order number, e.g. ORD-000042.",
    ),
]


def contact_option(flag: str, parse: Callable[[Any], str], metavar: str, help: str) -> Any:
    """An optional contact detail (a name, an e-mail address, a phone number): checked
    like the command checks it, absent unless given."""
    return Annotated[str | None, typer.Option(flag, parser=parse, metavar=metavar, help=help)]


CustomerNameOption = contact_option(
    "--customer-name",
    values.parse_person_name,
    "NAME",
    "The customer's name, kept with the customer (search finds it).",
)
CustomerEmailOption = contact_option(
    "--customer-email", values.parse_email, "EMAIL", "The customer's e-mail address."
)
CustomerPhoneOption = contact_option(
    "--customer-phone",
    values.parse_phone,
    "PHONE",
    "The customer's phone number, as they give it.",
)


def build_command(factory: Callable[..., Command], **fields: Any) -> Command:
    try:
        return factory(**fields)
    except ValidationError as error:
        fail(values.describe_for_flags(error))


def send_command(command: Command) -> None:
    settings = resolved_settings()
    try:
        with Publisher(settings) as publisher:
            receipt = publisher.publish(command)
    except PublishError as error:
        fail(str(error), code=FAILED)
    except Exception as error:  # database unreachable while recording "queued"
        fail(f"could not record {command.key}: {describe_failure(error)}", code=FAILED)
    console.print(
        f"published [bold]{command.type}[/] key=[bold]{receipt.key}[/] to {receipt.queue} "
        f"— check with: orderq status {receipt.key} --wait 10",
        highlight=False,
    )


@publish_app.command("upsert-product")
def upsert_product(
    key: KeyOption,
    sku: SkuOption,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Product name.")],
    price: Annotated[
        int,
        typer.Option(
            "--price",
            parser=values.parse_price,
            metavar="PRICE",
            help="Unit price, e.g. 12.50 (at most 100,000,000.00).",
        ),
    ],
) -> None:
    """Create a product (with empty stock) or change its name and price."""
    send_command(build_command(UpsertProduct, key=key, sku=sku, name=name, price_cents=price))


@publish_app.command("restock")
def restock(
    key: KeyOption,
    sku: SkuOption,
    qty: Annotated[
        int,
        typer.Option(
            "--qty", parser=values.whole_number(), metavar="N", help="Units received (> 0)."
        ),
    ],
) -> None:
    """Add received units to a product's stock."""
    send_command(build_command(RestockProduct, key=key, sku=sku, qty=qty))


@publish_app.command("place-order")
def place_order(
    key: KeyOption,
    customer: Annotated[
        str, typer.Option("--customer", metavar="CUSTOMER", help="Customer reference.")
    ],
    line: Annotated[
        list[OrderLine],
        typer.Option(
            "--line",
            parser=values.parse_line,
            metavar="SKU:QTY",
            help="A product and how many, e.g. MUG-1:2; repeat for more lines.",
        ),
    ],
    customer_name: CustomerNameOption = None,
    customer_email: CustomerEmailOption = None,
    customer_phone: CustomerPhoneOption = None,
) -> None:
    """Reserve stock for every line and create the order (or reject it whole). The
    --customer-* details, when given, replace the ones kept for the customer."""
    details = {"name": customer_name, "email": customer_email, "phone": customer_phone}
    given = {field: value for field, value in details.items() if value is not None}
    send_command(
        build_command(
            PlaceOrder,
            key=key,
            customer_ref=customer,
            lines=line,
            customer=given or None,
        )
    )


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


def _refused_summary(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return f" (line{'s' if len(numbers) > 1 else ''} {shown}{', …' if len(numbers) > 10 else ''})"


def _open(source: str) -> tuple[BinaryIO, int | None]:
    """The byte stream to read and, for a regular file, how many non-blank lines it has
    (a pipe such as `<(zcat commands.jsonl.gz)` is read once, without a total)."""
    if source == "-":
        return sys.stdin.buffer, None
    path = Path(source)
    if not path.exists():
        fail(f"{source}: no such file")
    if path.is_dir():
        fail(f"{source}: is a folder, not a file")
    try:
        total = None
        if path.is_file():
            with path.open("rb") as counting:
                total = sum(1 for _ in read_lines(counting).lines)
        return path.open("rb"), total
    except OSError as error:
        fail(f"{source}: cannot read it: {error.strerror}")


def publish_file(
    source: Annotated[
        str, typer.Argument(metavar="FILE|-", help="JSON-lines file of commands, or - for stdin.")
    ],
) -> None:
    """Publish commands from a JSON-lines file (or stdin), one command per line.

    A line looks like {"type": "place_order", "key": "web-1", "customer_ref": …}.

    Each line is read and checked on its own: a line that is not valid (JSON, a known
    command, UTF-8) is refused with its number and the reason, the others are
    published. The text is UTF-8; a file starting with a byte-order mark is read as
    UTF-8, UTF-16 or UTF-32 as the mark says. Exits 1 if any line was refused.
    """
    stream, total = _open(source)
    try:
        _publish_stream(source, stream, total)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _publish_stream(source: str, stream: BinaryIO, total: int | None) -> None:
    reader = read_lines(stream)
    settings = resolved_settings()
    if reader.marked:
        err_console.print(
            f"[dim]reading {'stdin' if source == '-' else source} as {reader.encoding} "
            "(it starts with a byte-order mark)[/]",
            highlight=False,
        )
    published, refused, line = 0, [], 0
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
            for item in reader.lines:
                line = item.number
                try:
                    if item.problem:
                        raise InvalidCommand(item.problem)
                    publisher.publish(parse_line(item.text))
                    published += 1
                except InvalidCommand as error:
                    refused.append(item.number)
                    progress.console.print(
                        f"[yellow]line {item.number}:[/] {escape(error.problem)}", highlight=False
                    )
                progress.advance(task)
    except PublishError as error:
        fail(
            f"{error} — stopped at line {line} after publishing {published} command(s); "
            "publishing the file again is safe (the keys make repeats harmless)",
            code=FAILED,
        )
    summary = f"published {published} command(s); {len(refused)} line(s) refused"
    console.print(summary + (_refused_summary(refused) if refused else ""), highlight=False)
    if refused:
        raise typer.Exit(FAILED)
