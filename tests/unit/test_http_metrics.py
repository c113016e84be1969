"""The HTTP service's ready-to-mount pieces on a tiny ASGI app: request metrics by route
template and status, and the /metrics endpoint."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from orderq.observability.asgi import (
    UNMATCHED,
    HttpMetricsMiddleware,
    metrics_endpoint,
    traced,
)
from tests.support.ids import unique


def tiny_app(route_key: str = "route"):
    """Routes the way Starlette/FastAPI do: the matched route object lands in the scope."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        if path.startswith("/v1/orders/"):
            scope[route_key] = SimpleNamespace(
                path="/v1/orders/{order_number:str}", path_format="/v1/orders/{order_number}"
            )
            status = 200
        elif path == "/v1/orders":
            scope[route_key] = SimpleNamespace(path="/v1/orders")
            status = 422 if scope["method"] == "POST" else 200
        elif path == "/boom":
            scope[route_key] = SimpleNamespace(path="/boom")
            raise RuntimeError("handler failed before answering")
        else:
            status = 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def call(app: Any, path: str, method: str = "GET", headers: list | None = None) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers or [],
        "query_string": b"",
    }
    asyncio.run(app(scope, receive, send))
    return sent


def requests(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("orderq_http_requests_total", labels) or 0.0


def timed(method: str, route: str) -> float:
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("orderq_http_request_duration_seconds_count", labels) or 0.0


def test_requests_are_counted_by_route_template_not_by_path():
    app = HttpMetricsMiddleware(tiny_app())
    template = "/v1/orders/{order_number}"
    before, before_timed = requests("GET", template, 200), timed("GET", template)

    for number in ("ORD-000001", "ORD-000002", "ORD-000003"):
        assert call(app, f"/v1/orders/{number}")[0]["status"] == 200

    assert requests("GET", template, 200) - before == 3
    assert timed("GET", template) - before_timed == 3
    assert (
        REGISTRY.get_sample_value(
            "orderq_http_requests_total",
            {"method": "GET", "route": "/v1/orders/ORD-000001", "status": "200"},
        )
        is None
    )


def test_status_and_method_are_labels():
    app = HttpMetricsMiddleware(tiny_app())
    before = requests("POST", "/v1/orders", 422), requests("GET", "/v1/orders", 200)

    call(app, "/v1/orders", method="POST")
    call(app, "/v1/orders", method="GET")

    assert requests("POST", "/v1/orders", 422) - before[0] == 1
    assert requests("GET", "/v1/orders", 200) - before[1] == 1


def test_a_path_no_route_matches_counts_as_unmatched():
    app = HttpMetricsMiddleware(tiny_app())
    before = requests("GET", UNMATCHED, 404)

    call(app, f"/{unique('nothing-here')}")

    assert requests("GET", UNMATCHED, 404) - before == 1


def test_a_handler_that_raises_counts_as_500_and_the_error_goes_on():
    app = HttpMetricsMiddleware(tiny_app())
    before = requests("GET", "/boom", 500)

    with pytest.raises(RuntimeError, match="before answering"):
        call(app, "/boom")

    assert requests("GET", "/boom", 500) - before == 1


def test_a_client_gone_before_the_answer_counts_as_499():
    async def hangs_up(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = SimpleNamespace(path="/v1/slow")
        raise asyncio.CancelledError

    before = requests("GET", "/v1/slow", 499)

    with pytest.raises(asyncio.CancelledError):
        call(HttpMetricsMiddleware(hangs_up), "/v1/slow")

    assert requests("GET", "/v1/slow", 499) - before == 1


def test_a_framework_that_stores_the_template_elsewhere_passes_its_own_resolver():
    route = f"/v1/{unique('custom')}/{{id}}"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["handler_template"] = route
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    before = requests("GET", route, 201)
    call(HttpMetricsMiddleware(app, route_of=lambda s: s.get("handler_template")), "/v1/x/1")

    assert requests("GET", route, 201) - before == 1


def test_other_scopes_pass_through_uncounted():
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def nothing() -> dict:
        return {}

    async def ignore(_: dict) -> None:
        return None

    asyncio.run(HttpMetricsMiddleware(app)({"type": "lifespan"}, nothing, ignore))
    assert seen == ["lifespan"]


# -- /metrics ---------------------------------------------------------------------------------


def private_registry() -> tuple[CollectorRegistry, str]:
    registry = CollectorRegistry()
    name = f"probe_{unique('m').replace('-', '_').lower()}"
    Counter(name, "a probe", registry=registry).inc(3)
    return registry, name


def test_the_endpoint_serves_the_registry_in_prometheus_text_format():
    registry, name = private_registry()

    start, body = call(metrics_endpoint(registry), "/metrics")

    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    assert f"{name}_total 3.0" in body["body"].decode()
    assert headers[b"content-length"] == str(len(body["body"])).encode()


def test_the_endpoint_speaks_openmetrics_when_asked():
    registry, name = private_registry()
    accept = [(b"accept", b"application/openmetrics-text; version=1.0.0")]

    start, body = call(metrics_endpoint(registry), "/metrics", headers=accept)

    assert dict(start["headers"])[b"content-type"].startswith(b"application/openmetrics-text")
    text = body["body"].decode()
    assert f"{name}_total 3.0" in text and text.rstrip().endswith("# EOF")


def test_head_answers_without_a_body_and_writes_are_refused():
    registry, _ = private_registry()
    endpoint = metrics_endpoint(registry)

    head = call(endpoint, "/metrics", method="HEAD")
    post = call(endpoint, "/metrics", method="POST")

    assert head[0]["status"] == 200 and head[1]["body"] == b""
    assert post[0]["status"] == 405
    assert dict(post[0]["headers"])[b"allow"] == b"GET, HEAD"


def test_the_endpoint_answers_the_lifespan_protocol_when_run_alone():
    registry, _ = private_registry()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(metrics_endpoint(registry)({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_without_tracing_the_http_span_hook_returns_the_app_itself():
    app = tiny_app()
    assert traced(app) is app
