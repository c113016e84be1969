"""The documents the API answers with, as models for /openapi.json (the routes build
plain dicts; these only describe them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    "CommandStatusDocument",
    "Health",
    "LoanDocument",
    "OrderDocument",
    "ProblemDocument",
    "Readiness",
]
