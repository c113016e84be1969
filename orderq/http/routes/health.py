"""Liveness and readiness, unauthenticated (for load balancers and healthchecks)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orderq.http import openapi
from orderq.http.services import services_of
from producers.command_log import CommandLog
from producers.database import autocommit

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    operation_id="healthz",
    summary="The process answers (no I/O)",
    responses={200: openapi.json_answer("Health", "Alive")},
)
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database answers; says whether the broker takes messages",
    description=(
        "503 only when the database is unreachable: with the broker down, commands "
        "are still accepted (and published once it is back), so the service is ready."
    ),
    responses={
        200: openapi.json_answer("Readiness", "Ready"),
        503: openapi.json_answer("Readiness", "The database is unreachable"),
    },
)
async def readyz(request: Request) -> Response:
    services = services_of(request)
    broker = f"failing: {services.relay.broker_error}" if services.relay.broker_error else "ok"

    def unpublished() -> int:
        with autocommit(services.engine) as connection:
            return CommandLog(connection).count_unpublished()

    try:
        count = await services.run(unpublished)
    except Exception as error:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": f"failing: {error.__class__.__name__}",
                "broker": broker,
            },
            503,
        )
    return JSONResponse({"status": "ok", "database": "ok", "broker": broker, "unpublished": count})
