"""`orderq orders …`: look at orders (read-only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from orderq.admin.order_queries import find_order, page_orders, status_report
from orderq.cli.console import console, fail, resolved_settings
from producers.database import build_engine

orders_app = typer.Typer(help="Look at orders (read-only).", no_args_is_help=True)

STATUSES = ("placed", "paid", "shipped", "cancelled")


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _engine() -> Engine:
    settings = resolved_settings()
    return build_engine(settings, pool_size=1, max_overflow=0)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str))


@orders_app.command("show")
def show(
    order_number: Annotated[str, typer.Argument(help="e.g. ORD-000042")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One order with its lines."""
    engine = _engine()
    try:
        order = find_order(engine, order_number.strip().upper())
    finally:
        engine.dispose()
    if order is None:
        fail(f"no order {order_number}", code=1)
    if as_json:
        _print_json(order)
        return
    console.print(
        f"[bold]{order['order_number']}[/] {order['status']} · customer {order['customer_ref']}"
        f" · total {_money(order['total_cents'])} · {order['created_at']:%Y-%m-%d %H:%M:%S}"
    )
    table = Table("sku", "qty", "unit price", "line total")
    for line in order["lines"]:
        table.add_row(
            line["sku"],
            str(line["qty"]),
            _money(line["unit_price_cents"]),
            _money(line["line_total_cents"]),
        )
    console.print(table)


@orders_app.command("list")
def list_orders(
    status: Annotated[str, typer.Option("--status", help="placed, paid, shipped or cancelled")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after the page that printed it.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Orders in a status, newest first, one keyset page at a time."""
    if status not in STATUSES:
        fail(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    engine = _engine()
    try:
        page = page_orders(engine, status, limit, cursor)
    except ValueError as error:
        fail(f"--cursor: {error}")
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
            _money(order["total_cents"]),
            f"{order['created_at']:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"next page: --cursor '{page.next_cursor}'", highlight=False)


@orders_app.command("report")
def report(
    days: Annotated[int, typer.Option("--days", min=1, max=3660)] = 7,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Orders and their value per status, created in the last N days."""
    until = datetime.now(UTC)
    engine = _engine()
    try:
        rows = status_report(engine, list(STATUSES), until - timedelta(days=days), until)
    finally:
        engine.dispose()
    if as_json:
        _print_json(rows)
        return
    table = Table("status", "orders", "value", title=f"orders created in the last {days} day(s)")
    for row in rows:
        table.add_row(row["status"], str(row["orders"]), _money(row["total_cents"]))
    console.print(table)
