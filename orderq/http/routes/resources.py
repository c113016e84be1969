"""GET the business rows commands create: an order (through the read side's orders
module, like every order read), a loan."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orderq.http import openapi
from orderq.http.intake import bearer_token
from orderq.http.problems import Problem
from orderq.http.services import HttpServices, services_of

router = APIRouter()

_ORDER_NUMBER = re.compile(r"ORD-[0-9]{6,20}")
MAX_ID = 2**63 - 1


def _read(model: str, description: str) -> dict:
    return {200: openapi.json_answer(model, description), **openapi.answers(401, 404, 503)}


def _by(parameter: dict) -> dict:
    """`openapi_extra` of a read: its one path parameter, behind the API key."""
    return {"parameters": [parameter], "security": openapi.SECURITY}


@router.get(
    "/v1/orders/{order_number}",
    operation_id="get_order",
    summary="An order with its lines",
    tags=["orders"],
    responses=_read("OrderDocument", "The order"),
    openapi_extra=_by(
        openapi.path_parameter(
            "order_number", "e.g. ORD-000042", {"type": "string", "maxLength": 40}
        )
    ),
)
async def get_order(request: Request) -> Response:
    services = services_of(request)
    token = bearer_token(request.headers.get("authorization"))
    number = request.path_params["order_number"].strip().upper()
    if not _ORDER_NUMBER.fullmatch(number):
        await services.run(services.intake.authenticate, token)
        raise Problem(
            404, "order_not_found", f"{number[:40]!r} is not an order number (like ORD-000042)"
        )
    order = await services.run(_order, services, token, number)
    if order is None:
        raise Problem(404, "order_not_found", f"no order {number}")
    return JSONResponse(jsonable_encoder(order))


def _order(services: HttpServices, token: str, number: str) -> dict[str, Any] | None:
    """The order, for any client: business rows are not client-scoped (a warehouse
    reads the shop's orders); the key of the place_order behind it is left out."""
    services.intake.authenticate(token)
    order = services.reader.order(number)
    if order is not None:
        order.pop("idempotency_key", None)
    return order


def _loan(services: HttpServices, token: str, loan_id: int) -> dict[str, Any] | None:
    """The loan, for any client, like an order."""
    services.intake.authenticate(token)
    return services.reader.loan(loan_id)


@router.get(
    "/v1/loans/{loan_id}",
    operation_id="get_loan",
    summary="A loan with its member, copy and work",
    tags=["loans"],
    responses=_read("LoanDocument", "The loan"),
    openapi_extra=_by(
        openapi.path_parameter(
            "loan_id",
            "the loan's id (a checkout's result has it)",
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        )
    ),
)
async def get_loan(request: Request) -> Response:
    services = services_of(request)
    token = bearer_token(request.headers.get("authorization"))
    raw = request.path_params["loan_id"]
    loan_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 20 else 0
    if not 1 <= loan_id <= MAX_ID:
        await services.run(services.intake.authenticate, token)
        raise Problem(404, "loan_not_found", f"{raw[:40]!r} is not a loan id")
    loan = await services.run(_loan, services, token, loan_id)
    if loan is None:
        raise Problem(404, "loan_not_found", f"no loan {loan_id}")
    return JSONResponse(jsonable_encoder(loan))
