"""`orderq serve`, tracing into a file: `python -m tests.support.traced_api --port P`.

Production code configures tracing from the OTEL_* variables; a test needs the API
server's spans where it can read them, so each server process configures the same
tracing with an exporter that appends every finished span as one JSON line to the file
named by ORDERQ_TEST_SPAN_FILE, then serves the app exactly as `orderq serve` does
(`traced(create_app(settings))`).
"""

from __future__ import annotations

import argparse
import os

from orderq.http.server import serve
from orderq.observability.asgi import ASGIApp, traced
from orderq.settings import Settings
from tests.support.span_files import JsonLinesSpanExporter
from worker.adapters.tracing import configure_tracing

FACTORY = "tests.support.traced_api:traced_app"


def traced_app() -> ASGIApp:
    """The app of one server process, its spans in ORDERQ_TEST_SPAN_FILE."""
    from orderq.http.app import create_app

    settings = Settings()
    configure_tracing(
        settings,
        service_name="orderq-api",
        exporter=JsonLinesSpanExporter(os.environ["ORDERQ_TEST_SPAN_FILE"]),
    )
    return traced(create_app(settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    serve(Settings(), "127.0.0.1", port, 1, factory=FACTORY)


if __name__ == "__main__":
    main()
