"""The ASGI application: `create_app(settings)`, the one composition root of the
HTTP service.

    app = create_app(resolved_settings)      # routers, error answers, lifespan

The lifespan builds the services (engine, intake, relay, waiter) when the server
starts and stops them on shutdown; nothing connects at import or construction.
`ROUTERS` lists the routers in order: another family of endpoints (search, listings)
is one more entry. `MIDDLEWARE` is where cross-cutting layers go (metrics, tracing):
each entry is applied around every route, outermost first.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from orderq.http.openapi import openapi_document
from orderq.http.problems import Problem
from orderq.http.routes import commands, health, reads, resources
from orderq.http.services import build_services
from orderq.observability.asgi import ASGIApp, HttpMetricsMiddleware, metrics_endpoint, traced
from orderq.observability.registry import metrics_engine, scrape_registry
from orderq.observability.sources import BrokerQueues
from worker.adapters.tracing import configure_tracing

if TYPE_CHECKING:
    from orderq.settings import Settings

log = logging.getLogger("orderq.http")

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    commands.router,
    resources.router,
    reads.router,
)
MIDDLEWARE: tuple[Middleware, ...] = ()


def description(settings: Settings) -> str:
    return (
        "Commands for orders and library loans, each run exactly once. POST a command "
        "with an `Idempotency-Key`; a 2xx means it is committed in PostgreSQL. See "
        "docs/http.md. Idempotency keys are kept "
        f"{settings.ledger_retention_days:g} days after their command was decided "
        "(ORDERQ_LEDGER_RETENTION_DAYS); a key is scoped to the client of the API key. "
        f"`Prefer: wait=N` waits at most {settings.http_max_wait_seconds:g} s."
    )


def create_app(
    settings: Settings,
    routers: Sequence[APIRouter] = ROUTERS,
    middleware: Sequence[Middleware] = MIDDLEWARE,
) -> FastAPI:
    """The HTTP service on `settings`, whose database and broker URLs are resolved.

    Besides the routers it serves /metrics (the same content as `orderq metrics serve`
    plus its own request metrics: scrape one of the two) and, when the OTEL_* settings
    ask for it, opens the HTTP server span of each request's trace.
    """
    settings.require_database_url()
    settings.require_broker_url()
    configure_tracing(settings, service_name="orderq-api")  # a no-op unless OTEL_* is set
    timeout_ms = settings.metrics_query_timeout_ms
    scrape_engine = metrics_engine(settings, timeout_ms)  # connects at the first scrape
    broker = BrokerQueues(settings, timeout_ms / 1000)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings)
        services.start()
        app.state.services = services
        try:
            yield
        finally:
            await services.stop()
            broker.close()
            scrape_engine.dispose()

    app = FastAPI(
        title="orderq",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,  # no CDN-hosted UI on a production API; /openapi.json is the contract
        redoc_url=None,
        lifespan=lifespan,
        middleware=[*middleware, Middleware(HttpMetricsMiddleware)],
        **_without_native_tracing(),
    )
    for router in routers:
        app.include_router(router)
    app.mount("/metrics", metrics_endpoint(scrape_registry(settings, scrape_engine, broker)))
    app.openapi = lambda: openapi_document(app, routers, description(settings))  # type: ignore[method-assign]
    _answer_errors_with_problems(app)
    return app


def _without_native_tracing() -> dict[str, Any]:
    """FastAPI's own tracing off, where it has one (0.16x: on once a global tracer
    provider exists). orderq opens each request's server span itself
    (`observability.asgi.traced`, any framework and FastAPI version); a second server
    span from headers only would start a second, unrelated trace for every request."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False}}
    return {}


def _answer_errors_with_problems(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def problem(_: Request, error: Problem) -> Response:
        return error.response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        reason = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "bad_request")
        return Problem(
            error.status_code, reason, str(error.detail), headers=error.headers
        ).response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        return Problem(400, "bad_request", str(error.errors())[:500]).response()

    @app.exception_handler(PoolTimeout)
    async def pool_exhausted(_: Request, error: Exception) -> Response:
        return _unavailable("every database connection of this server is busy")

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, error: DBAPIError) -> Response:
        log.warning("database error: %s", error)
        return _unavailable(f"the database did not answer ({error.orig.__class__.__name__})")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> Response:
        log.exception("unexpected error", exc_info=error)
        return Problem(
            500,
            "internal_error",
            "an unexpected error; nothing half-written, "
            "retrying with the same Idempotency-Key is safe",
        ).response()


def _unavailable(detail: str) -> Response:
    return Problem(
        503,
        "unavailable",
        f"{detail}; retry with the same Idempotency-Key",
        headers={"Retry-After": "1"},
    ).response()


def app_from_environment() -> ASGIApp:
    """The app on settings read from the environment: the factory `orderq serve` hands
    the server (each server process builds its own), inside the HTTP server span when
    tracing is on."""
    from orderq.settings import Settings

    return traced(create_app(Settings()))


__all__ = ["MIDDLEWARE", "ROUTERS", "app_from_environment", "create_app"]
