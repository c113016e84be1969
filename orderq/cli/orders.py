"""`orderq orders …`: look at orders (read-only), through the read side's orders module
(orderq/read/orders.py) like every other order read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from orderq.cli.console import FAILED, console, fail, settings_or_fail
from orderq.cli.reads import read_with
from orderq.cli.values import money, parse_order_number, whole_number
from orderq.read import MAX_LIMIT, ReadError
from orderq.read.cursors import CursorCodec
from orderq.read.orders import check_orders_cursor
from orderq.read.reader import cursor_secret
from worker.domain.orders import OrderStatus

orders_app = typer.Typer(help="Look at orders (read-only).", no_args_is_help=True)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str))


def _when(moment: datetime | str) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


@orders_app.command("show")
def show(
    order_number: Annotated[
        str,
        typer.Argument(metavar="ORDER_NUMBER", parser=parse_order_number, help="e.g. ORD-000042"),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One order with its lines (exit 1 if there is no such order)."""
    order = read_with(lambda reader: reader.order(order_number))
    if order is None:
        fail(f"no order {order_number}", code=FAILED)
    if as_json:
        _print_json(order)
        return
    console.print(
        f"[bold]{order['order_number']}[/] {order['status']} · customer {order['customer_ref']}"
        f" · total {money(order['total_cents'])} · {_when(order['created_at'])}"
    )
    table = Table("sku", "qty", "unit price", "line total")
    for line in order["lines"]:
        table.add_row(
            line["sku"],
            str(line["qty"]),
            money(line["unit_price_cents"]),
            money(line["line_total_cents"]),
        )
    console.print(table)


@orders_app.command("list")
def list_orders(
    status: Annotated[
        OrderStatus | None,
        typer.Option("--status", help="Only orders in this status (default: every status)."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            parser=whole_number(1, MAX_LIMIT),
            metavar="N",
            help=f"Orders per page (1-{MAX_LIMIT}).",
        ),
    ] = 20,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", metavar="CURSOR", help="Continue after the page that printed it."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Orders, newest first, one keyset page at a time: every status, or one."""
    settings = settings_or_fail()
    wanted = str(status) if status else None
    if cursor:  # checked before any server is asked (or started)
        try:
            check_orders_cursor(CursorCodec(cursor_secret(settings)), wanted, cursor)
        except ReadError as error:
            printed_by = "orderq orders list" + (f" --status {wanted}" if wanted else "")
            fail(f"--cursor {cursor[:40]!r} is not a cursor printed by {printed_by}: {error}")
    page = read_with(
        lambda reader: reader.orders(wanted, limit, cursor), quiet=as_json, settings=settings
    )
    if as_json:
        _print_json({"orders": page.results, "next_cursor": page.next_cursor})
        return
    table = Table("order", "customer", "status", "total", "created")
    for order in page.results:
        table.add_row(
            order["order_number"],
            order["customer_ref"],
            order["status"],
            money(order["total_cents"]),
            _when(order["created_at"]),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"next page: --cursor '{page.next_cursor}'", highlight=False)


@orders_app.command("report")
def report(
    days: Annotated[
        int,
        typer.Option(
            "--days",
            parser=whole_number(1, 3660),
            metavar="N",
            help="Orders created in the last N days.",
        ),
    ] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Orders and their value per status, created in the last N days."""
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    rows = read_with(lambda reader: reader.order_totals(since, until))
    if as_json:
        _print_json(rows)
        return
    table = Table("status", "orders", "value", title=f"orders created in the last {days} day(s)")
    for row in rows:
        table.add_row(row["status"], str(row["orders"]), money(row["total_cents"]))
    console.print(table)
