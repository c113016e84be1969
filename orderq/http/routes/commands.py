"""POST a command (generic and resource-style), GET a command's status by key.

Each route only translates: read the request within bounds, hand it to the intake
(in a thread), publish after the commit, wait if asked, answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orderq.http import openapi, paths  # noqa: F401  (paths: the `anytext` convertor)
from orderq.http.body import read_bounded
from orderq.http.idempotency import parse_idempotency_key, requested_wait
from orderq.http.intake import bearer_token
from orderq.http.problems import Problem
from orderq.http.relay import Accepted
from orderq.http.responses import outcome_response, status_document
from orderq.http.services import services_of
from producers.commands import COMMAND_CLASSES, COMMANDS_BY_TYPE
from producers.outcomes import status_of

router = APIRouter()


JSON_TYPES = ("application/json", "text/json")


@dataclass(frozen=True)
class Alias:
    """A resource-style URL for a command type; `from_path` fields come from the URL."""

    path: str
    command_type: str
    summary: str
    from_path: tuple[str, ...] = ()
    tag: str = "orders"


ALIASES = (
    Alias("/v1/orders", "place_order", "Place an order"),
    Alias(
        "/v1/orders/{order_number}/payment",
        "confirm_payment",
        "Confirm an order's payment",
        ("order_number",),
    ),
    Alias("/v1/orders/{order_number}/shipment", "ship_order", "Ship an order", ("order_number",)),
    Alias(
        "/v1/orders/{order_number}/cancellation",
        "cancel_order",
        "Cancel an order",
        ("order_number",),
    ),
    Alias("/v1/loans", "checkout_copy", "Check out a copy (lend it)", tag="loans"),
    Alias("/v1/loans/{barcode}/return", "return_copy", "Return a copy", ("barcode",), "loans"),
    Alias("/v1/loans/{barcode}/renewal", "renew_loan", "Renew a loan", ("barcode",), "loans"),
    Alias("/v1/reservations", "place_reservation", "Reserve a work", tag="loans"),
)
PATH_PARAMETERS = {
    "order_number": openapi.path_parameter(
        "order_number",
        "the order's number, e.g. ORD-000042",
        {"type": "string", "pattern": "^[Oo][Rr][Dd]-[0-9]{6,}$"},
    ),
    "barcode": openapi.path_parameter(
        "barcode", "the copy's barcode", {"type": "string", "minLength": 1, "maxLength": 64}
    ),
}


async def submit(request: Request, command_type: str, from_path: tuple[str, ...] = ()) -> Response:
    """Accept one command durably and answer (see orderq/http/responses.py)."""
    services = services_of(request)
    settings = services.settings
    headers = request.headers
    token = bearer_token(headers.get("authorization"))
    _check_content_type(headers.get("content-type"))
    raw = await read_bounded(
        request.stream(), headers.get("content-length"), settings.http_max_body_bytes
    )
    submission = await services.run(
        services.intake.submit,
        token,
        command_type,
        headers.get("idempotency-key"),
        raw,
        {name: request.path_params[name] for name in from_path},
    )
    command = submission.command
    if submission.created:
        services.relay.submit(
            Accepted(command.key, command.task_name, command.message(), submission.trace_context)
        )
    status = submission.status
    wait = requested_wait(headers.getlist("prefer"), settings.http_max_wait_seconds)
    if wait > 0 and not status.is_terminal:
        record, _ = await services.waiter.wait(submission.stored_key, wait)
        if record is not None:
            status = status_of(submission.key, record)
    return outcome_response(status, command_type, created_by_this_request=submission.created)


def _check_content_type(content_type: str | None) -> None:
    """JSON bodies only; a request without a Content-Type is read as JSON."""
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES or media.endswith("+json") or media == "":
        return
    raise Problem(
        415, "unsupported_media_type", f"send the command as application/json, not {media}"
    )


def _endpoint(
    command_type: str, from_path: tuple[str, ...] = ()
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await submit(request, command_type, from_path)

    endpoint.body_model = openapi.body_model(command_type, from_path)  # type: ignore[attr-defined]
    return endpoint


for _alias in ALIASES:
    router.add_api_route(
        _alias.path,
        _endpoint(_alias.command_type, _alias.from_path),
        methods=["POST"],
        name=f"{_alias.command_type}_alias",
        operation_id=f"{_alias.command_type}_by_resource",
        summary=_alias.summary,
        description=f"The `{_alias.command_type}` command. "
        + (COMMANDS_BY_TYPE[_alias.command_type].__doc__ or ""),
        tags=[_alias.tag],
        responses=openapi.answers(*openapi.POST_ANSWERS),
        openapi_extra=openapi.command_operation(
            _alias.command_type,
            _alias.from_path,
            [PATH_PARAMETERS[name] for name in _alias.from_path],
        ),
    )

for _command in COMMAND_CLASSES:
    _type = _command.model_fields["type"].default
    router.add_api_route(
        f"/v1/commands/{_type}",
        _endpoint(_type),
        methods=["POST"],
        name=_type,
        operation_id=f"submit_{_type}",
        summary=f"Submit {_type}",
        description=_command.__doc__ or "",
        tags=["commands"],
        responses=openapi.answers(*openapi.POST_ANSWERS),
        openapi_extra=openapi.command_operation(_type),
    )


@router.post("/v1/commands/{command_type}", include_in_schema=False)
async def unknown_command_type(request: Request, command_type: str) -> Response:
    """A POST to a type no command has (otherwise the GET below would make it a 405)."""
    known = ", ".join(sorted(COMMANDS_BY_TYPE))
    raise Problem(
        404, "unknown_command_type", f"no command type {command_type[:100]!r} (known: {known})"
    )


@router.get(
    "/v1/commands/{key:anytext}",
    operation_id="command_status",
    summary="Where a command stands, by its Idempotency-Key",
    description=(
        "`queued` / `running` / `succeeded` (with `result`) / `rejected` (with `reason`) / "
        "`failed`; 404 for a key this client never used (or one past the retention "
        "window). Keys are scoped to your client."
    ),
    tags=["commands"],
    responses={
        200: openapi.ANSWERS[200] | {"description": "The command's status"},
        **openapi.answers(401, 404, 503),
    },
    openapi_extra={
        "parameters": [
            openapi.path_parameter(
                "key",
                "the Idempotency-Key (URL-encoded)",
                {"type": "string", "minLength": 1, "maxLength": 255},
            )
        ],
        "security": openapi.SECURITY,
    },
)
async def command_status(request: Request) -> Response:
    services = services_of(request)
    token = bearer_token(request.headers.get("authorization"))
    key = request.path_params["key"]
    try:
        parse_idempotency_key(key)
    except ValueError:
        await services.run(services.intake.authenticate, token)
        raise _unknown(key) from None
    status, command_type = await services.run(services.intake.status, token, key)
    if status.status == "unknown":
        raise _unknown(key)
    return JSONResponse(status_document(status, command_type))


def _unknown(key: str) -> Problem:
    return Problem(
        404,
        "unknown_key",
        f"no command with Idempotency-Key {key[:300]!r} for this client",
        key=key[:300],
    )
