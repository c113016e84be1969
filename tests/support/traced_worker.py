"""The worker's Celery app, tracing into a file: `celery -A tests.support.traced_worker`.

Production code configures tracing from the OTEL_* variables; a test needs the spans of
the worker's pool processes where it can read them, so each pool process gets the same
`configure_tracing` with an exporter that appends every finished span as one JSON line
to the file named by ORDERQ_TEST_SPAN_FILE.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from celery.signals import worker_process_init
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from worker.adapters.tracing import configure_tracing
from worker.entrypoints.celery_app import app

__all__ = ["app"]


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object per line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(as_dict(span)) + "\n" for span in spans]
        with self._lock, open(self.path, "a", encoding="utf-8") as file:
            file.writelines(lines)
        return SpanExportResult.SUCCESS


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    context, parent = span.get_span_context(), span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent is not None else None,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
        "service": span.resource.attributes.get("service.name"),
        "pid": os.getpid(),
    }


@worker_process_init.connect
def _trace_into_the_test_file(**_: object) -> None:
    configure_tracing(
        app.settings,
        service_name="orderq-worker",
        exporter=JsonLinesSpanExporter(os.environ["ORDERQ_TEST_SPAN_FILE"]),
    )
