"""From a command's status to the HTTP answer: status code, headers, body.

    queued / running             202  Location: /v1/commands/{key}, Retry-After: 1
    succeeded (created it)       201  Location of the order or loan it created
    succeeded (other commands)   200
    rejected (business rule)     409  problem document, `reason` e.g. insufficient_stock
    rejected (invalid_command,   422  problem document
      idempotency_key_reused)
    failed / discarded           503  problem document (an operator can replay it)

Every answer to a request that did not create the command itself (its key was
accepted or decided before) carries `Idempotent-Replayed: true`, and a success is
then 200, never 201: the resource was created by the first request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse

from orderq.http.problems import Problem
from producers.outcomes import CommandStatus

REPLAYED = {"Idempotent-Replayed": "true"}
#: rejections that say the request itself is wrong rather than the state it met
UNPROCESSABLE = frozenset({"invalid_command", "idempotency_key_reused"})


def command_location(key: str) -> str:
    return f"/v1/commands/{quote(key, safe='')}"


def resource_location(command_type: str | None, result: dict[str, Any] | None) -> str | None:
    """Where the order or loan a command created can be read."""
    result = result or {}
    if command_type == "place_order" and result.get("order_number"):
        return f"/v1/orders/{quote(str(result['order_number']), safe='')}"
    if command_type == "checkout_copy" and result.get("loan_id") is not None:
        return f"/v1/loans/{result['loan_id']}"
    return None


def status_document(status: CommandStatus, command_type: str | None) -> dict[str, Any]:
    """`GET /v1/commands/{key}`'s body, and the body of 2xx answers to POSTs."""
    document = status.as_dict()
    return {"key": document.pop("key"), "type": command_type, **document}


def outcome_response(
    status: CommandStatus, command_type: str | None, *, created_by_this_request: bool
) -> JSONResponse:
    """The answer to a POST whose command is in `status`."""
    headers = {} if created_by_this_request else dict(REPLAYED)
    if status.status == "succeeded":
        location = resource_location(command_type, status.result)
        if location:
            headers["Location"] = location
        code = 201 if created_by_this_request and location else 200
        return JSONResponse(status_document(status, command_type), code, headers)
    if status.status == "rejected":
        reason = status.reason or "rejected"
        raise Problem(
            422 if reason in UNPROCESSABLE else 409,
            reason,
            status.message or reason,
            headers=headers,
            key=status.key,
            command_type=command_type,
            details=status.details or None,
        )
    if status.status == "failed":
        raise Problem(
            503,
            status.reason or "failed",
            f"orderq gave up on this command: {status.message or 'no outcome'}. An operator "
            "can replay it (orderq dead-letters replay); this key then gets its outcome",
            headers=headers,
            key=status.key,
            command_type=command_type,
        )
    headers["Location"] = command_location(status.key)
    headers["Retry-After"] = "1"
    return JSONResponse(status_document(status, command_type), 202, headers)
