"""The metrics HTTP server behind `orderq metrics serve` (prometheus_client's own
threaded server: no extra dependency)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from sqlalchemy import Engine

from orderq.observability.registry import metrics_engine, scrape_registry
from orderq.observability.sources import BrokerQueues
from orderq.settings import Settings


@dataclass
class MetricsServer:
    """A running metrics server; `close()` stops it and releases its connections."""

    url: str
    server: WSGIServer
    thread: threading.Thread
    engine: Engine
    broker: BrokerQueues

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.engine.dispose()
        self.broker.close()


def start_metrics_server(settings: Settings, host: str, port: int) -> MetricsServer:
    """Serve /metrics on host:port in a background thread; OSError if it cannot listen."""
    timeout_ms = settings.metrics_query_timeout_ms
    engine = metrics_engine(settings, timeout_ms)
    broker = BrokerQueues(settings, timeout_ms / 1000)
    registry = scrape_registry(settings, engine, broker)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError:
        engine.dispose()
        broker.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    return MetricsServer(f"http://{shown}:{port}/metrics", server, thread, engine, broker)
