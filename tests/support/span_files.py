"""Spans written to a file, one JSON object per line, by processes a test starts (a
worker's pool processes, an API server), and read back by the test."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


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


def spans_in(path: Path, trace_id: str | None = None) -> list[dict[str, Any]]:
    """The spans written to `path` so far (of one trace, if given); a line still being
    written is left for the next look."""
    text = path.read_text() if path.exists() else ""
    complete = text[: text.rfind("\n") + 1]
    spans = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return [s for s in spans if trace_id is None or s["trace_id"] == trace_id]
