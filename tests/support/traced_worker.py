"""The worker's Celery app, tracing into a file: `celery -A tests.support.traced_worker`.

Production code configures tracing from the OTEL_* variables; a test needs the spans of
the worker's pool processes where it can read them, so each pool process gets the same
`configure_tracing` with an exporter that appends every finished span as one JSON line
to the file named by ORDERQ_TEST_SPAN_FILE.
"""

from __future__ import annotations

import os

from celery.signals import worker_process_init

from tests.support.span_files import JsonLinesSpanExporter
from worker.adapters.tracing import configure_tracing
from worker.entrypoints.celery_app import app

__all__ = ["app"]


@worker_process_init.connect
def _trace_into_the_test_file(**_: object) -> None:
    configure_tracing(
        app.settings,
        service_name="orderq-worker",
        exporter=JsonLinesSpanExporter(os.environ["ORDERQ_TEST_SPAN_FILE"]),
    )
