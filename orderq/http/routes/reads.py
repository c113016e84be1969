"""GET the read side: search, keyset listings and the hot report.

Each route only translates: the query string into one `Reader` call (orderq/read),
its `Page` into `{"results": [...], "next_cursor": ...}`, a refusal into a 400
problem document (`reason`: `invalid_query` or `invalid_cursor`). Who may read what
is orderq/http/reading.py's: every key reads business data, a client sees only its
own idempotency keys, the ledger is for operator keys.

    GET /v1/works?q=harry+poter               GET /v1/customers/{ref}/orders
    GET /v1/members?q=+44 (0)20 7946-0000     GET /v1/members/{member}/loans?state=history
    GET /v1/customers?q=ada@                  GET /v1/products/{sku}/movements
    GET /v1/products?q=MUG                    GET /v1/ledger?status=rejected&since=…
    GET /v1/orders?status=paid                GET /v1/reports/orders-over-total?status=…

Every listing takes `limit` (1-100, default 20) and `cursor` (the `next_cursor` of
the page before, with the same other parameters).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orderq.http import openapi, paths  # noqa: F401  (paths: the `anytext` convertor)
from orderq.http.api_keys import Caller
from orderq.http.reading import key_seen_by, read_as_caller
from orderq.http.services import services_of
from orderq.read import DEFAULT_LIMIT, MAX_LIMIT, InvalidQuery, Page, Reader
from orderq.read.ledger import LEDGER_DAYS
from orderq.read.ledger import STATUSES as LEDGER_STATUSES
from orderq.read.orders import MAX_TOTAL_CENTS, ORDER_STATUSES, REPORT_DAYS
from orderq.read.pages import MAX_IDENTIFIER_LENGTH, MAX_QUERY_LENGTH

router = APIRouter()

MAX_CURSOR_LENGTH = 1024

# -- the query string ---------------------------------------------------------------------


def _text(params: QueryParams, name: str) -> str | None:
    value = params.get(name)
    return None if value is None or value == "" else value


def _required(params: QueryParams, name: str) -> str:
    value = _text(params, name)
    if value is None:
        raise InvalidQuery(f"the query parameter {name!r} is required")
    return value


def _whole(params: QueryParams, name: str, default: int, maximum: int, minimum: int = 0) -> int:
    raw = _text(params, name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not (
        minimum <= int(raw) <= maximum
    ):
        raise InvalidQuery(f"{name} {raw[:40]!r}: expected a whole number {minimum}-{maximum}")
    return int(raw)


def _limit(params: QueryParams) -> int:
    return _whole(params, "limit", DEFAULT_LIMIT, MAX_LIMIT, minimum=1)


def _cursor(params: QueryParams) -> str | None:
    return _text(params, "cursor")


def _moment(params: QueryParams, name: str) -> datetime | None:
    raw = _text(params, name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidQuery(
            f"{name} {raw[:40]!r} is not an ISO 8601 date or time (like 2026-11-29T08:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _one_of(params: QueryParams, name: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(params, name)
    if value is not None and value not in allowed:
        raise InvalidQuery(f"{name} {value[:40]!r}: expected one of {', '.join(allowed)}")
    return value


# -- the OpenAPI description of a read ---------------------------------------------------------


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


SEARCH_QUERY = _query(
    "q",
    "what to look for, as a person types it",
    {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH},
    required=True,
)
PAGING = [
    _query(
        "limit",
        f"results per page (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    _query(
        "cursor",
        "the `next_cursor` of the previous page (same other parameters)",
        {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_LENGTH},
    ),
]
IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": MAX_IDENTIFIER_LENGTH}


def _window_parameters(default_days: float) -> list[dict]:
    """`since` and `until`; left out, they are fixed by the first page: the cursor
    keeps them, so later pages continue the same window."""
    moment = {"type": "string", "format": "date-time"}
    return [
        _query(
            "since",
            f"from this moment (default: {default_days:g} day(s) before until); "
            "UTC when it names no zone",
            moment,
        ),
        _query("until", "up to this moment, excluded (default: now)", moment),
    ]


def _read(
    path: str,
    operation_id: str,
    summary: str,
    model: str,
    parameters: list[dict],
    *,
    tag: str,
    description: str = "",
    for_operators: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a GET read with its parameters and answers."""
    codes = (400, 401, 403, 503) if for_operators else (400, 401, 503)
    return router.get(
        path,
        operation_id=operation_id,
        summary=summary,
        description=description,
        tags=[tag],
        responses={200: openapi.json_answer(model, "One page"), **openapi.answers(*codes)},
        openapi_extra={"parameters": [*parameters, *PAGING], "security": openapi.SECURITY},
    )


async def _page(
    request: Request, read: Callable[[Reader, QueryParams, Caller], Page], **options: Any
) -> Response:
    reader, params = services_of(request).reader, request.query_params
    page = await read_as_caller(request, lambda caller: read(reader, params, caller), **options)
    return JSONResponse(page.as_dict())


# -- search -------------------------------------------------------------------------------

_PEOPLE = (
    "The query's shape decides: an `@` searches e-mail addresses (exact or prefix), "
    "3+ digits with phone punctuation search phone numbers (any spelling: "
    "`+44 (0)20 7946-0000` finds `020 7946 0000`), anything else names."
)


@dataclass(frozen=True)
class Search:
    """`GET path?q=…`: one Reader search."""

    path: str
    summary: str
    model: str
    search: Callable[[Reader, str, int, str | None], Page]
    description: str = ""


SEARCHES = (
    Search(
        "/v1/works",
        "Works by title or author, typos and accents forgiven",
        "WorksPage",
        Reader.search_works,
        'Full text (`"exact phrase"`, `or`, `-word`) and trigram similarity: `harry poter` '
        "finds *Harry Potter and the Philosopher's Stone*, `bronte` Emily Brontë's works. "
        "Withdrawn works are never found.",
    ),
    Search(
        "/v1/members",
        "Members by name, e-mail or phone",
        "MembersPage",
        Reader.search_members,
        _PEOPLE,
    ),
    Search(
        "/v1/customers",
        "Customers by name, e-mail, phone or exact reference",
        "CustomersPage",
        Reader.search_customers,
        _PEOPLE + " A customer's exact `customer_ref` matches a name query.",
    ),
    Search(
        "/v1/products",
        "Products by SKU prefix or name, with their stock",
        "ProductsPage",
        Reader.search_products,
    ),
)


def _search_route(search: Search, name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _page(
            request,
            lambda r, p, _: search.search(r, _required(p, "q"), _limit(p), _cursor(p)),
        )

    endpoint.__name__ = name
    return endpoint


for _search in SEARCHES:
    _name = "search_" + _search.path.rsplit("/", 1)[-1]
    _read(
        _search.path,
        _name,
        _search.summary,
        _search.model,
        [SEARCH_QUERY],
        tag="search",
        description=_search.description,
    )(_search_route(_search, _name))


# -- listings -----------------------------------------------------------------------------


@_read(
    "/v1/orders",
    "list_orders",
    "Orders, newest first: every status, or one",
    "OrdersPage",
    [
        _query(
            "status",
            "only orders in this status (default: every status)",
            {"type": "string", "enum": list(ORDER_STATUSES)},
        )
    ],
    tag="orders",
)
async def list_orders(request: Request) -> Response:
    return await _page(
        request,
        lambda r, p, _: r.orders(_one_of(p, "status", ORDER_STATUSES), _limit(p), _cursor(p)),
    )


@_read(
    "/v1/customers/{customer_ref:anytext}/orders",
    "customer_orders",
    "A customer's orders, newest first",
    "CustomerOrdersPage",
    [openapi.path_parameter("customer_ref", "the customer_ref of the orders", IDENTIFIER)],
    tag="orders",
)
async def customer_orders(request: Request) -> Response:
    customer = request.path_params["customer_ref"]
    return await _page(
        request, lambda r, p, _: r.orders_of_customer(customer, _limit(p), _cursor(p))
    )


@_read(
    "/v1/members/{member}/loans",
    "member_loans",
    "A member's loans, newest first: active ones, or the whole history",
    "MemberLoansPage",
    [
        openapi.path_parameter("member", "the member number, e.g. M-1001", IDENTIFIER),
        _query(
            "state",
            "`active` (not returned; default) or `history` (every loan)",
            {"type": "string", "enum": ["active", "history"], "default": "active"},
        ),
    ],
    tag="loans",
    description="An unknown member has no loans: an empty page.",
)
async def member_loans(request: Request) -> Response:
    member = request.path_params["member"]
    return await _page(
        request,
        lambda r, p, _: r.member_loans(
            member,
            _one_of(p, "state", ("active", "history")) or "active",
            _limit(p),
            _cursor(p),
        ),
    )


@_read(
    "/v1/products/{sku}/movements",
    "product_movements",
    "A product's stock movements, newest first",
    "MovementsPage",
    [openapi.path_parameter("sku", "the product's SKU", IDENTIFIER)],
    tag="orders",
    description="`command_key` is the Idempotency-Key of the command that moved the stock "
    "when it is yours, null for another client's command.",
)
async def product_movements(request: Request) -> Response:
    sku = request.path_params["sku"]

    def read(reader: Reader, params: QueryParams, caller: Caller) -> Page:
        page = reader.product_movements(sku, _limit(params), _cursor(params))
        for movement in page.results:
            movement["command_key"] = key_seen_by(caller, movement["command_key"])
        return page

    return await _page(request, read)


@_read(
    "/v1/ledger",
    "ledger",
    "Decided commands by outcome and time, newest first (operator keys only)",
    "LedgerPage",
    [
        _query(
            "status",
            "the outcome",
            {"type": "string", "enum": list(LEDGER_STATUSES)},
            required=True,
        ),
        *_window_parameters(LEDGER_DAYS),
    ],
    tag="operators",
    description="Every client's commands, keys as stored (`@client/key` for keys that "
    "came over HTTP): operator data, 403 for a client key.",
    for_operators=True,
)
async def ledger(request: Request) -> Response:
    def read(reader: Reader, params: QueryParams, _: Caller) -> Page:
        status = _one_of(params, "status", LEDGER_STATUSES) or _required(params, "status")
        since, until = _moment(params, "since"), _moment(params, "until")
        return reader.ledger(status, since, until, _limit(params), _cursor(params))

    return await _page(request, read, for_operators=True)


# -- the hot report -----------------------------------------------------------------------


@_read(
    "/v1/reports/orders-over-total",
    "orders_over_total",
    "Orders in a status and window whose items total more than a threshold, newest first",
    "BigOrdersPage",
    [
        _query(
            "status", "the orders' status", {"type": "string", "enum": list(ORDER_STATUSES)}, True
        ),
        _query(
            "min_total_cents",
            "the items must total more than this",
            {"type": "integer", "minimum": 0, "maximum": MAX_TOTAL_CENTS},
            required=True,
        ),
        *_window_parameters(REPORT_DAYS),
    ],
    tag="orders",
)
async def orders_over_total(request: Request) -> Response:
    def read(reader: Reader, params: QueryParams, _: Caller) -> Page:
        status = _one_of(params, "status", ORDER_STATUSES) or _required(params, "status")
        _required(params, "min_total_cents")
        threshold = _whole(params, "min_total_cents", 0, MAX_TOTAL_CENTS)
        since, until = _moment(params, "since"), _moment(params, "until")
        return reader.orders_over_total(
            status, since, until, threshold, _limit(params), _cursor(params)
        )

    return await _page(request, read)
