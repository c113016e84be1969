"""OpenTelemetry tracing: optional (`pip install 'orderq[tracing]'`), off unless configured.

Configured by the standard variables: tracing is on when `OTEL_TRACES_EXPORTER` names an
exporter (`otlp`, `console`, or any installed `opentelemetry_traces_exporter` entry
point) or, without it, when `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; `OTEL_SDK_DISABLED=true` turns it off.
The exporter reads the rest (headers, timeouts, TLS) from the environment itself. When
off, nothing here imports opentelemetry: the production install without the extra
runs unchanged.

What one process traces once configured:
- Celery (opentelemetry-instrumentation-celery): a PRODUCER span per publish, whose
  context travels in the message headers (`traceparent`), and a CONSUMER span per task
  run, the child of the publish span — one trace from publish to the worker;
- every SQL statement (opentelemetry-instrumentation-psycopg: orderq runs its SQL on the
  psycopg connection, below SQLAlchemy, so SQLAlchemy's instrumentation would miss it);
- one `db.transaction` span per transaction on a SQLAlchemy connection (BEGIN to the
  connection's return to the pool, so the COMMIT is inside it), current while it is
  open: the statements of a command's transaction nest under it.

A command published later than the request that brought it (the HTTP intake commits
it, a relay thread or maintenance publishes it) keeps the request's trace: the intake
stores `context_carrier()` with the command, the publisher runs `with
continued(carrier):`, and the publish span becomes a child of the request's span.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool

from producers.errors import ConfigurationError
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

EXTRA = "pip install 'orderq[tracing]'"
_SPAN = "orderq.transaction_span"
#: the most a stored trace context may hold (traceparent is 55 characters; tracestate
#: at most 32 members; baggage, if a deployment propagates it, is bounded here)
MAX_CARRIER_CHARACTERS = 4096


def tracing_requested(settings: WorkerSettings) -> bool:
    """Whether the OTEL_* settings ask for traces to be exported."""
    if settings.otel_sdk_disabled:
        return False
    exporters = (settings.otel_traces_exporter or "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(settings.otel_exporter_otlp_endpoint or settings.otel_exporter_otlp_traces_endpoint)


class Tracing:
    """Tracing as configured in this process; `close()` flushes and undoes it."""

    def __init__(self, provider: TracerProvider, undo: Sequence[Callable[[], None]]) -> None:
        self.provider = provider
        self._undo = list(undo)

    def flush(self, timeout_millis: int = 5000) -> None:
        """Export the spans still buffered (call before a process exits)."""
        self.provider.force_flush(timeout_millis)

    def close(self) -> None:
        global _active
        for undo in reversed(self._undo):
            undo()
        self.provider.shutdown()
        if _active is self:
            _active = None


_active: Tracing | None = None


def active() -> Tracing | None:
    """This process's tracing, if configured."""
    return _active


def configure_tracing(
    settings: WorkerSettings,
    *,
    service_name: str,
    exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> Tracing | None:
    """Start tracing in this process if the settings ask for it (or `exporter` is given).

    Call it once per process before the first publish, task or connection: for a prefork
    worker, in each child (`worker_process_init`). Returns None when tracing is off.
    Raises `ConfigurationError` when tracing is asked for but the extra is missing or the
    exporter is unknown.
    """
    global _active
    if exporter is None and not tracing_requested(settings):
        return None
    if _active is not None:
        return _active
    _require_extra()
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name or service_name})
    )
    for one in [exporter] if exporter is not None else _exporters(settings):
        provider.add_span_processor(BatchSpanProcessor(one))
    if set_global:
        trace.set_tracer_provider(provider)
    celery, psycopg = CeleryInstrumentor(), PsycopgInstrumentor()
    celery.instrument(tracer_provider=provider)
    psycopg.instrument(tracer_provider=provider)
    transactions = TransactionSpans(provider.get_tracer("orderq"))
    transactions.listen()
    _active = Tracing(provider, [celery.uninstrument, psycopg.uninstrument, transactions.remove])
    return _active


def check_tracing(settings: WorkerSettings) -> None:
    """Raise `ConfigurationError` now if tracing is asked for but cannot start (missing
    extra, unknown exporter): a worker's main process calls it before forking children
    that would each fail."""
    if not tracing_requested(settings):
        return
    _require_extra()
    for exporter in _exporters(settings):
        exporter.shutdown()


def _require_extra() -> None:
    """Raise `ConfigurationError` naming the extra unless its packages import."""
    try:
        import opentelemetry.instrumentation.celery
        import opentelemetry.instrumentation.psycopg
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as missing:
        raise ConfigurationError(
            f"tracing is configured (OTEL_* variables) but its packages are missing: {EXTRA} "
            f"({missing})"
        ) from None


def _exporters(settings: WorkerSettings) -> list[SpanExporter]:
    names = [n.strip().lower() for n in (settings.otel_traces_exporter or "otlp").split(",")]
    return [_exporter(name, settings) for name in names if name and name != "none"]


def _exporter(name: str, settings: WorkerSettings) -> SpanExporter:
    if name == "otlp":
        protocol = (settings.otel_exporter_otlp_protocol or "http/protobuf").strip().lower()
        if protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        if protocol == "grpc":
            try:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter as GrpcSpanExporter,
                )
            except ImportError:
                raise ConfigurationError(
                    "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: pip install "
                    "opentelemetry-exporter-otlp-proto-grpc (the tracing extra ships "
                    "http/protobuf, port 4318)"
                ) from None
            return GrpcSpanExporter()
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc"
        )
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from importlib.metadata import entry_points

    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER={name!r}: no such span exporter is installed "
            "(orderq ships otlp and console)"
        )
    return next(iter(found)).load()()


class TransactionSpans:
    """A `db.transaction` span for each transaction on a SQLAlchemy connection.

    Starts at BEGIN and is current until the connection goes back to the pool (the
    COMMIT or ROLLBACK round trip is inside it; SQLAlchemy's commit event fires before
    it), or until the next BEGIN on the same connection.
    """

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer

    def _listeners(self) -> list[tuple[type, str, Callable[..., None]]]:
        return [
            (Engine, "begin", self._begin),
            (Engine, "commit", self._committed),
            (Engine, "rollback", self._rolled_back),
            (Pool, "checkin", self._returned),
        ]

    def listen(self) -> None:
        for target, name, listener in self._listeners():
            event.listen(target, name, listener)

    def remove(self) -> None:
        for target, name, listener in self._listeners():
            event.remove(target, name, listener)

    def _begin(self, connection: Any) -> None:
        from opentelemetry import context, trace

        info = connection.info
        self._end(info)
        span = self._tracer.start_span(
            "db.transaction", kind=trace.SpanKind.CLIENT, attributes={"db.system": "postgresql"}
        )
        info[_SPAN] = (span, context.attach(trace.set_span_in_context(span)))

    def _committed(self, connection: Any) -> None:
        self._outcome(connection, "commit")

    def _rolled_back(self, connection: Any) -> None:
        self._outcome(connection, "rollback")

    def _outcome(self, connection: Any, outcome: str) -> None:
        held = connection.info.get(_SPAN)
        if held is not None:
            held[0].set_attribute("db.transaction.outcome", outcome)

    def _returned(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            self._end(record.info)

    @staticmethod
    def _end(info: dict[Any, Any]) -> None:
        held = info.pop(_SPAN, None)
        if held is None:
            return
        from opentelemetry import context, trace

        span, token = held
        # Detach only if still current: another connection's transaction began inside
        # this one and is still open (not last in, first out); its own end restores it.
        if trace.get_current_span() is span:
            context.detach(token)
        span.end()


def current_trace_id() -> str | None:
    """The trace id of the current span (32 hex digits), None when tracing is off."""
    if _active is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def annotate(attributes: dict[str, Any]) -> None:
    """Add attributes to the current span (the task's), when tracing is on."""
    if _active is None:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})


def context_carrier() -> dict[str, str] | None:
    """The current trace context as the configured propagators write it (W3C
    `traceparent` and `tracestate` by default), to store with work done later; None
    when tracing is off, no span is current, or it would be unreasonably large."""
    if _active is None:
        return None
    from opentelemetry import propagate, trace

    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier or sum(len(k) + len(v) for k, v in carrier.items()) > MAX_CARRIER_CHARACTERS:
        return None
    return carrier


@contextmanager
def continued(carrier: Mapping[str, Any] | None) -> Iterator[None]:
    """Run the block inside the trace context `carrier` holds (from `context_carrier`),
    so the spans it starts — a publish — join that trace. A no-op when tracing is off or
    there is no (valid) carrier: the block then starts its own trace, as before."""
    if _active is None or not carrier:
        yield
        return
    from opentelemetry import context, propagate

    strings = {str(k): v for k, v in carrier.items() if isinstance(v, str)}
    token = context.attach(propagate.extract(strings))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def command_in_batch(
    carrier: Mapping[str, Any] | None, task_name: str, key: str, batch_size: int
) -> Iterator[None]:
    """A command's own span inside a batch: `run/<task>` in the trace of the publish
    that sent it (its message's headers), so its handler's statements join that trace.
    The batch's transaction is shared by all its commands: its BEGIN, claims, locks and
    COMMIT stay outside. A no-op when tracing is off."""
    if _active is None:
        yield
        return
    from opentelemetry.trace import SpanKind

    tracer = _active.provider.get_tracer("orderq")
    attributes = {"orderq.key": key, "orderq.batch_size": batch_size}
    with (
        continued(carrier),
        tracer.start_as_current_span(
            f"run/{task_name}", kind=SpanKind.CONSUMER, attributes=attributes
        ),
    ):
        yield
