"""`orderq search works|members|customers|products QUERY`: find things as people type them."""

from __future__ import annotations

from typing import Annotated

import typer

from orderq.cli.reads import AsJson, Cursor, Limit, read_with, show
from orderq.read import DEFAULT_LIMIT

search_app = typer.Typer(
    help="Search works, members, customers and products (typos and accents forgiven).",
    no_args_is_help=True,
)
Query = Annotated[str, typer.Argument(help="What to look for.")]


@search_app.command("works")
def works(
    query: Query,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """Works by title or author, best match first, with their available copies."""
    page = read_with(lambda r: r.search_works(query, limit, cursor), quiet=as_json)
    columns = [
        ("work", "work"),
        ("title", "title"),
        ("authors", "authors"),
        ("available_copies", "available"),
        ("copies", "copies"),
    ]
    show(page, columns, as_json, empty="no work matches")


@search_app.command("members")
def members(
    query: Annotated[str, typer.Argument(help="A name, an e-mail address or a phone number.")],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """Members by name, e-mail or phone (any spelling of the number)."""
    page = read_with(lambda r: r.search_members(query, limit, cursor), quiet=as_json)
    columns = [
        ("member", "member"),
        ("name", "name"),
        ("email", "e-mail"),
        ("phone", "phone"),
        ("status", "status"),
        ("matched_by", "matched by"),
    ]
    show(page, columns, as_json, empty="no member matches")


@search_app.command("customers")
def customers(
    query: Annotated[
        str, typer.Argument(help="A name, an e-mail address, a phone number or a reference.")
    ],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """Customers (the customer_ref of orders) by name, e-mail, phone or reference."""
    page = read_with(lambda r: r.search_customers(query, limit, cursor), quiet=as_json)
    columns = [
        ("customer", "customer"),
        ("name", "name"),
        ("email", "e-mail"),
        ("phone", "phone"),
        ("matched_by", "matched by"),
    ]
    show(page, columns, as_json, empty="no customer matches")


@search_app.command("products")
def products(
    query: Annotated[str, typer.Argument(help="The start of a SKU, or a name.")],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """Products by SKU prefix or name, with their stock."""
    page = read_with(lambda r: r.search_products(query, limit, cursor), quiet=as_json)
    columns = [
        ("sku", "sku"),
        ("name", "name"),
        ("price_cents", "price (cents)"),
        ("available", "available"),
        ("on_hand", "on hand"),
    ]
    show(page, columns, as_json, empty="no product matches")
