"""`orderq orders …`: look at orders (read-only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from orderq.admin.order_queries import decode_cursor, find_order, page_orders, status_report
from orderq.cli.console import FAILED, console, fail, resolved_settings
from orderq.cli.values import money, parse_order_number, whole_number
from producers.database import build_engine
from worker.domain.orders import OrderStatus

orders_app = typer.Typer(help="Look at orders (read-only).", no_args_is_help=True)


def _engine() -> Engine:
    settings = resolved_settings()
    return build_engine(settings, pool_size=1, max_overflow=0)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str))


@orders_app.command("show")
def show(
    order_number: Annotated[
        str,
        typer.Argument(metavar="ORDER_NUMBER", parser=parse_order_number, help="e.g. ORD-000042"),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One order with its lines (exit 1 if there is no such order)."""
    engine = _engine()
    try:
        order = find_order(engine, order_number)
    finally:
        engine.dispose()
    if order is None:
        fail(f"no order {order_number}", code=FAILED)
    if as_json:
        _print_json(order)
        return
    console.print(
        f"[bold]{order['order_number']}[/] {order['status']} · customer {order['customer_ref']}"
        f" · total {money(order['total_cents'])} · {order['created_at']:%Y-%m-%d %H:%M:%S}"
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
        typer.Option("--limit", parser=whole_number(1, 500), metavar="N", help="Orders per page."),
    ] = 20,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", metavar="CURSOR", help="Continue after the page that printed it."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Orders, newest first, one keyset page at a time: every status, or one."""
    if cursor:
        try:
            decode_cursor(cursor)
        except ValueError:
            fail(f"--cursor {cursor!r} is not a cursor printed by orderq orders list")
    engine = _engine()
    try:
        page = page_orders(engine, status, limit, cursor)
    finally:
        engine.dispose()
    if as_json:
        _print_json({"orders": page.orders, "next_cursor": page.next_cursor})
        return
    table = Table("order", "customer", "status", "total", "created")
    for order in page.orders:
        table.add_row(
            order["order_number"],
            order["customer_ref"],
            order["status"],
            money(order["total_cents"]),
            f"{order['created_at']:%Y-%m-%d %H:%M:%S}",
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
    engine = _engine()
    try:
        rows = status_report(engine, [str(s) for s in OrderStatus], since, until)
    finally:
        engine.dispose()
    if as_json:
        _print_json(rows)
        return
    table = Table("status", "orders", "value", title=f"orders created in the last {days} day(s)")
    for row in rows:
        table.add_row(row["status"], str(row["orders"]), money(row["total_cents"]))
    console.print(table)
