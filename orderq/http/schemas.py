"""The documents the API answers with, as models for /openapi.json (the routes build
plain dicts; these only describe them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model


class CommandStatusDocument(BaseModel):
    """Where a command stands; `result` once succeeded, `reason` once rejected or failed."""

    key: str = Field(description="the Idempotency-Key the client sent")
    type: str | None = Field(default=None, description="the command type, once known")
    status: Literal["unknown", "queued", "running", "succeeded", "rejected", "failed"]
    result: dict[str, Any] | None = None
    reason: str | None = None
    message: str | None = None
    details: dict[str, Any] | None = None
    attempts: int = 0


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDocument(BaseModel):
    """An error (RFC 9457) with orderq's machine-readable `reason`."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:orderq:problem:<reason>")
    title: str
    status: int
    detail: str
    reason: str = Field(description="orderq's reason, e.g. insufficient_stock")
    key: str | None = None
    command_type: str | None = None
    details: dict[str, Any] | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="for invalid_command: each field and what is wrong with it"
    )


class OrderLineDocument(BaseModel):
    sku: str
    qty: int
    unit_price_cents: int
    line_total_cents: int


class OrderDocument(BaseModel):
    order_number: str
    customer_ref: str
    status: str
    total_cents: int
    created_at: datetime
    lines: list[OrderLineDocument]


class LoanDocument(BaseModel):
    loan_id: int
    member: str
    barcode: str
    work: str
    title: str
    status: Literal["active", "returned"]
    checked_out_at: datetime
    due_at: datetime
    returned_at: datetime | None = None
    overdue_at: datetime | None = None
    renewals: int


# -- the read side: search, listings, the hot report (orderq/http/routes/reads.py) ---------


class WorkResult(BaseModel):
    work: str = Field(description="the work's code")
    title: str
    authors: list[str]
    available_copies: int = Field(description="copies on the shelf now")
    copies: int = Field(description="copies the library has (withdrawn ones left out)")


class MemberResult(BaseModel):
    member: str = Field(description="the member number")
    name: str
    email: str | None = None
    phone: str | None = Field(default=None, description="as the member gave it")
    status: Literal["active", "suspended"]
    loan_limit: int
    matched_by: Literal["name", "email", "phone"]


class CustomerResult(BaseModel):
    customer: str = Field(description="the customer_ref orders carry")
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    first_order_at: datetime
    matched_by: Literal["name", "email", "phone"]


class ProductResult(BaseModel):
    sku: str
    name: str
    price_cents: int
    on_hand: int
    reserved: int
    available: int


class OrderSummary(BaseModel):
    order_number: str
    customer_ref: str
    status: Literal["placed", "paid", "shipped", "cancelled"]
    total_cents: int
    created_at: datetime


class CustomerOrder(BaseModel):
    order_number: str
    status: Literal["placed", "paid", "shipped", "cancelled"]
    total_cents: int
    created_at: datetime


class MemberLoan(BaseModel):
    barcode: str
    work: str
    title: str
    checked_out_at: datetime
    due_at: datetime
    returned_at: datetime | None = None
    overdue_at: datetime | None = None
    renewals: int


class StockMovement(BaseModel):
    created_at: datetime
    reason: str
    on_hand_delta: int
    reserved_delta: int
    order_number: str | None = None
    command_key: str | None = Field(
        default=None,
        description="the Idempotency-Key of the command that moved the stock: yours "
        "only (null for another client's command); every key for an operator key",
    )


class LedgerRow(BaseModel):
    key: str = Field(description="the idempotency key as stored: `@client/key` over HTTP")
    command_type: str
    status: Literal["succeeded", "rejected"]
    reason: str | None = None
    result: dict[str, Any] | None = None
    attempts: int
    created_at: datetime = Field(description="when a worker first claimed the key")
    completed_at: datetime | None = None


class BigOrder(BaseModel):
    order_number: str
    customer_ref: str
    status: Literal["placed", "paid", "shipped", "cancelled"]
    created_at: datetime
    lines: int
    units: int
    items_total_cents: int


def _page(name: str, result: type[BaseModel], what: str) -> type[BaseModel]:
    return create_model(  # type: ignore[call-overload, no-any-return]
        name,
        __doc__=f"One page of {what}; `next_cursor` continues it (null on the last page).",
        results=(list[result], ...),  # type: ignore[valid-type]
        next_cursor=(
            str | None,
            Field(description="pass it as `cursor` for the next page; opaque and signed"),
        ),
    )


WorksPage = _page("WorksPage", WorkResult, "works, best match first")
MembersPage = _page("MembersPage", MemberResult, "members, best match first")
CustomersPage = _page("CustomersPage", CustomerResult, "customers, best match first")
ProductsPage = _page("ProductsPage", ProductResult, "products, best match first")
OrdersPage = _page("OrdersPage", OrderSummary, "orders, newest first")
CustomerOrdersPage = _page("CustomerOrdersPage", CustomerOrder, "a customer's orders")
MemberLoansPage = _page("MemberLoansPage", MemberLoan, "a member's loans, newest first")
MovementsPage = _page("MovementsPage", StockMovement, "a product's stock movements")
LedgerPage = _page("LedgerPage", LedgerRow, "decided commands, newest first")
BigOrdersPage = _page("BigOrdersPage", BigOrder, "orders above a total, newest first")
PAGE_MODELS: tuple[type[BaseModel], ...] = (
    WorksPage,
    MembersPage,
    CustomersPage,
    ProductsPage,
    OrdersPage,
    CustomerOrdersPage,
    MemberLoansPage,
    MovementsPage,
    LedgerPage,
    BigOrdersPage,
)


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    broker: str
    unpublished: int | None = Field(
        default=None, description="accepted commands not yet handed to the broker"
    )


__all__ = [
    "PAGE_MODELS",
    "CommandStatusDocument",
    "Health",
    "LoanDocument",
    "OrderDocument",
    "ProblemDocument",
    "Readiness",
]
