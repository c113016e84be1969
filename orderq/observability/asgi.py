"""Ready-to-mount observability for the HTTP service (plain ASGI, any framework).

- `metrics_endpoint(registry)`: an ASGI app serving the Prometheus text format (mount it
  at /metrics; the collectors run in a worker thread, so a slow database never blocks
  the event loop);
- `HttpMetricsMiddleware`: `orderq_http_requests_total{method,route,status}` and
  `orderq_http_request_duration_seconds{method,route}`. `route` is the route's template
  (`/v1/orders/{order_number}`), never the raw path, so the number of series stays
  bounded; a request no route matched is `unmatched`;
- `traced(app)`: the HTTP server span (OpenTelemetry's ASGI middleware) when
  tracing is on, the app itself otherwise — the first span of a trace that continues
  through publish, broker, task and transaction.

How the HTTP service mounts them is in docs/observability.md ("Wiring the HTTP
service").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder

from worker.adapters import tracing

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "unmatched"
#: a client that went away before the response started (nginx's convention)
CLIENT_CLOSED = 499

HTTP_REQUESTS = Counter(
    "orderq_http_requests",
    "HTTP requests answered, by route template and status code",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "orderq_http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def route_template(scope: Scope) -> str | None:
    """The matched route's template, as routers leave it in the scope.

    Starlette and FastAPI put the matched route object in `scope["route"]`
    (`path_format` is the template without converters, `path` with them); others put
    the template string in `scope["route_path"]` or `scope["path_template"]`.
    """
    route = scope.get("route")
    for attribute in ("path_format", "path"):
        template = getattr(route, attribute, None)
        if isinstance(template, str):
            return template
    for key in ("route_path", "path_template"):
        template = scope.get(key)
        if isinstance(template, str):
            return template
    return None


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status.

    `route_of(scope)` names the route once the app has routed the request (the scope is
    shared, routers write into it); pass your framework's own if `route_template` does
    not find it. A request that raised before answering counts as 500.
    """

    def __init__(
        self, app: ASGIApp, route_of: Callable[[Scope], str | None] = route_template
    ) -> None:
        self.app = app
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status: int | None = None

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        except asyncio.CancelledError:
            status = status or CLIENT_CLOSED
            raise
        finally:
            route = self.route_of(scope) or UNMATCHED
            method = str(scope.get("method", "GET"))
            HTTP_REQUESTS.labels(method, route, str(status or 500)).inc()
            HTTP_REQUEST_SECONDS.labels(method, route).observe(perf_counter() - started)


def metrics_endpoint(registry: CollectorRegistry) -> ASGIApp:
    """An ASGI app answering any GET/HEAD with the registry in Prometheus' text format
    (or OpenMetrics, if the scraper asks for it)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _respond(send, 405, b"text/plain", b"GET /metrics\n", allow=b"GET, HEAD")
            return
        accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        body = await asyncio.to_thread(encoder, registry)
        if scope.get("method") == "HEAD":
            body = b""
        await _respond(send, 200, content_type.encode(), body)

    return app


async def _respond(
    send: Send, status: int, content_type: bytes, body: bytes, allow: bytes | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if allow is not None:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def traced(app: ASGIApp) -> ASGIApp:
    """`app` inside OpenTelemetry's ASGI middleware (a SERVER span per request, continuing
    an incoming `traceparent`) when this process traces; `app` itself otherwise.

    Call it after `configure_tracing` (worker.adapters.tracing) ran in the process.
    """
    active = tracing.active()
    if active is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(app, tracer_provider=active.provider)  # type: ignore[return-value]
