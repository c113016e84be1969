"""The OpenAPI 3.1 description: parameters, bodies and answers of every operation.

The routes read their requests themselves (to bound them and to answer every problem
with a problem document), so they declare their parameters and bodies here, and
`openapi_document` adds the schemas they refer to. Bodies are the command models of
`producers.commands` without `key` (the Idempotency-Key header), `type` (the URL) and
any field the URL carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, create_model
from pydantic.json_schema import models_json_schema

from orderq.http import schemas
from orderq.http.idempotency import MAX_HTTP_KEY_LENGTH
from orderq.http.problems import PROBLEM_JSON
from producers.commands import COMMANDS_BY_TYPE

REF = "#/components/schemas/{model}"
SECURITY = [{"apiKey": []}]

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": (
        "Your unique key for this request (IETF httpapi Idempotency-Key): the same key "
        "with the same body returns the stored outcome; with another body, 422. Scoped "
        'to your API key\'s client. A Structured Field string (`"k-1"`) or bare (`k-1`).'
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_HTTP_KEY_LENGTH,
        "pattern": "^[!-~]+$",
    },
}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": (
        "`wait=N` (RFC 7240): wait up to N seconds (capped by the server) for the "
        "outcome instead of answering 202 at once."
    ),
    "schema": {"type": "string", "maxLength": 200},
}

_HEADERS = {
    "Location": {"schema": {"type": "string"}, "description": "where to read the result"},
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "present when an earlier request with this key made the outcome",
    },
    "Retry-After": {"schema": {"type": "string"}, "description": "seconds before asking again"},
}


def json_answer(
    model: str, description: str, *headers: str, media: str = "application/json"
) -> dict:
    answer: dict[str, Any] = {
        "description": description,
        "content": {media: {"schema": {"$ref": REF.format(model=model)}}},
    }
    if headers:
        answer["headers"] = {name: _HEADERS[name] for name in headers}
    return answer


def _problem(description: str, *headers: str) -> dict:
    return json_answer("ProblemDocument", description, *headers, media=PROBLEM_JSON)


STATUS_DOC = "CommandStatusDocument"
ANSWERS: dict[int, dict] = {
    200: json_answer(
        STATUS_DOC,
        "Succeeded (a replay, or a command that creates nothing)",
        "Location",
        "Idempotent-Replayed",
    ),
    201: json_answer(STATUS_DOC, "Succeeded: created the order or loan at Location", "Location"),
    202: json_answer(
        STATUS_DOC,
        "Accepted: committed, the outcome comes later (see Location)",
        "Location",
        "Retry-After",
        "Idempotent-Replayed",
    ),
    400: _problem(
        "Missing or malformed Idempotency-Key, or a body that is not JSON (or too deep, or "
        "not Unicode); for a read: a bad query parameter (`reason`: invalid_query) or a "
        "cursor this listing did not issue (invalid_cursor)"
    ),
    401: _problem("No valid API key (Authorization: Bearer <token>)"),
    403: _problem("Operator data: this API key is not an operator key (`reason`: forbidden)"),
    404: _problem("Not found"),
    409: _problem(
        "Rejected by a business rule (`reason`: insufficient_stock, copy_not_available, …)",
        "Idempotent-Replayed",
    ),
    413: _problem("The body is over the size limit"),
    415: _problem("The body is not JSON (Content-Type)"),
    422: _problem(
        "invalid_command (naming the field) or idempotency_key_reused", "Idempotent-Replayed"
    ),
    503: _problem(
        "The database is unavailable, or the command failed for good "
        "(`reason`: failed / discarded)",
        "Idempotent-Replayed",
    ),
}
POST_ANSWERS = (200, 201, 202, 400, 401, 409, 413, 415, 422, 503)


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ANSWERS[code] for code in codes}


def path_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


@cache
def body_model(command_type: str, from_path: tuple[str, ...] = ()) -> type[BaseModel]:
    """The body a POST of `command_type` takes: the command's fields but the key, the
    type and those in `from_path`."""
    command = COMMANDS_BY_TYPE[command_type]
    fields = {
        name: (info.annotation, info)
        for name, info in command.model_fields.items()
        if name not in {"key", "type", *from_path}
    }
    suffix = (
        "Body"
        if not from_path
        else "BodyWithout" + "".join(part.title() for name in from_path for part in name.split("_"))
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{command.__name__}{suffix}",
        __config__=ConfigDict(extra="forbid"),
        __doc__=command.__doc__,
        **fields,
    )


def command_operation(
    command_type: str, from_path: tuple[str, ...] = (), path_parameters: list[dict] | None = None
) -> dict[str, Any]:
    """`openapi_extra` of a command POST: its parameters and its body."""
    model = body_model(command_type, from_path)
    required = any(info.is_required() for info in model.model_fields.values())
    return {
        "parameters": [*(path_parameters or []), IDEMPOTENCY_KEY, PREFER],
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        },
        "security": SECURITY,
    }


DOCUMENT_MODELS: tuple[type[BaseModel], ...] = (
    schemas.CommandStatusDocument,
    schemas.ProblemDocument,
    schemas.OrderDocument,
    schemas.LoanDocument,
    schemas.Health,
    schemas.Readiness,
    *schemas.PAGE_MODELS,
)


def openapi_document(
    app: FastAPI, routers: Sequence[APIRouter], description: str
) -> dict[str, Any]:
    """The app's OpenAPI 3.1 document, built once."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title="orderq",
        version="1",
        openapi_version="3.1.0",
        description=description,
        routes=app.routes,
    )
    endpoints = {getattr(route, "endpoint", None) for router in routers for route in router.routes}
    bodies = [e.body_model for e in endpoints if hasattr(e, "body_model")]
    models = [*DOCUMENT_MODELS, *sorted(bodies, key=lambda model: model.__name__)]
    _, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template=REF
    )
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(definitions.get("$defs", {}))
    components["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from `orderq api-keys create --client NAME`",
        }
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("431", HEADERS_TOO_LARGE)
    app.openapi_schema = document
    return document


#: Answered by the HTTP server itself, before any route, to any request whose request
#: line and headers outgrow `ORDERQ_HTTP_MAX_HEADER_BYTES` (a URL with oversized query
#: values included): documented on every operation, since any of them can get it.
HEADERS_TOO_LARGE = {
    "description": (
        "Request line and headers over the server's limit (ORDERQ_HTTP_MAX_HEADER_BYTES, "
        "16 KiB by default); no body"
    )
}
