"""`orderq list …`: keyset listings (customer orders, member loans, stock movements, the
ledger) and the big-orders report, one page at a time."""

from __future__ import annotations

from typing import Annotated

import typer

from orderq.cli.reads import AsJson, Cursor, Limit, read_with, show, window
from orderq.cli.values import decimal_number, whole_number
from orderq.read import DEFAULT_LIMIT

list_app = typer.Typer(
    help="List orders, loans, stock movements and ledger entries, newest first.",
    no_args_is_help=True,
)
Since = Annotated[str | None, typer.Option("--since", help="From this date/time (UTC).")]
Until = Annotated[str | None, typer.Option("--until", help="Up to this date/time (UTC).")]
Days = Annotated[
    float,
    typer.Option(
        "--days",
        parser=decimal_number(0.0001, unit="days"),
        metavar="DAYS",
        help="Window without --since.",
    ),
]


@list_app.command("customer-orders")
def customer_orders(
    customer: Annotated[str, typer.Argument(help="The customer_ref of the orders.")],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """A customer's orders, newest first."""
    page = read_with(lambda r: r.orders_of_customer(customer, limit, cursor), quiet=as_json)
    columns = [
        ("order_number", "order"),
        ("status", "status"),
        ("total_cents", "total (cents)"),
        ("created_at", "placed"),
    ]
    show(page, columns, as_json, empty=f"no orders for {customer}")


@list_app.command("member-loans")
def member_loans(
    member: Annotated[str, typer.Argument(help="The member number, e.g. M-1001.")],
    history: Annotated[
        bool, typer.Option("--history", help="Every loan, returned ones too.")
    ] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """A member's active loans (or, with --history, all of them), newest first."""
    state = "history" if history else "active"
    page = read_with(lambda r: r.member_loans(member, state, limit, cursor), quiet=as_json)
    columns = [
        ("barcode", "copy"),
        ("title", "title"),
        ("checked_out_at", "checked out"),
        ("due_at", "due"),
        ("returned_at", "returned"),
        ("renewals", "renewals"),
    ]
    show(page, columns, as_json, empty=f"no {state} loans for {member}")


@list_app.command("movements")
def movements(
    sku: Annotated[str, typer.Argument(help="The product's SKU.")],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """A product's stock movements, newest first."""
    page = read_with(lambda r: r.product_movements(sku, limit, cursor), quiet=as_json)
    columns = [
        ("created_at", "when"),
        ("reason", "reason"),
        ("on_hand_delta", "on hand ±"),
        ("reserved_delta", "reserved ±"),
        ("order_number", "order"),
        ("command_key", "command"),
    ]
    show(page, columns, as_json, empty=f"no movements for {sku}")


@list_app.command("ledger")
def ledger(
    status: Annotated[str, typer.Option("--status", help="succeeded or rejected")],
    since: Since = None,
    until: Until = None,
    days: Days = 1,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """Decided commands with one outcome, in a time window, newest first."""
    start, end = window(since, until)
    page = read_with(
        lambda r: r.ledger(status, start, end, limit, cursor, days=days), quiet=as_json
    )
    columns = [
        ("key", "key"),
        ("command_type", "type"),
        ("status", "status"),
        ("reason", "reason"),
        ("attempts", "attempts"),
        ("created_at", "claimed"),
    ]
    show(page, columns, as_json, empty=f"no {status} commands in that window")


@list_app.command("big-orders")
def big_orders(
    status: Annotated[str, typer.Option("--status", help="placed, paid, shipped or cancelled")],
    min_total: Annotated[
        int,
        typer.Option(
            "--min-total-cents",
            parser=whole_number(0),
            metavar="CENTS",
            help="Items must total more than this.",
        ),
    ],
    since: Since = None,
    until: Until = None,
    days: Days = 7,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """The hot report: orders in a status and window whose items total more than
    --min-total-cents, newest first."""
    start, end = window(since, until)
    page = read_with(
        lambda r: r.orders_over_total(status, start, end, min_total, limit, cursor, days=days),
        quiet=as_json,
    )
    columns = [
        ("order_number", "order"),
        ("customer_ref", "customer"),
        ("lines", "lines"),
        ("units", "units"),
        ("items_total_cents", "items total (cents)"),
        ("created_at", "placed"),
    ]
    show(page, columns, as_json, empty="no order above that total in that window")
