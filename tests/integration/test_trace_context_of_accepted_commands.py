"""A command accepted inside a traced request keeps the request's trace context in
PostgreSQL, and whoever publishes it later — the API's relay (from memory or from its
sweep of the database) or the maintenance re-publisher — publishes inside that
context. Tracing runs in this process with an in-memory exporter; the publisher is a
recorder of the context current at each send (the whole chain through a real broker
and worker is tests/e2e/http/test_trace_through_http.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from orderq.http.relay import Accepted, Relay
from producers.command_log import CommandLog
from producers.commands import UpsertProduct
from producers.database import autocommit
from tests.support.ids import unique
from worker.adapters import tracing
from worker.service.maintenance.republish import republish_stuck


@pytest.fixture
def traced(settings) -> Iterator[tracing.Tracing]:
    active = tracing.configure_tracing(
        settings, service_name="orderq-test", exporter=InMemorySpanExporter(), set_global=False
    )
    assert active is not None
    yield active
    active.close()


def request_context(active: tracing.Tracing) -> tuple[dict[str, str], str]:
    """The carrier an HTTP request's span would leave, and its trace id."""
    with active.provider.get_tracer("test").start_as_current_span("POST /v1/orders") as span:
        carrier = tracing.context_carrier()
    assert carrier is not None and carrier["traceparent"].startswith("00-")
    return carrier, format(span.get_span_context().trace_id, "032x")


def accept(engine, carrier: dict[str, str] | None, age_seconds: int = 0) -> UpsertProduct:
    command = UpsertProduct(key=unique("traced"), sku=unique("T"), name="Mug", price_cents=1)
    with autocommit(engine) as connection:
        acceptance = CommandLog(connection).accept(
            command.key, command.type, command.fingerprint(), command.message(), carrier
        )
        assert acceptance.created
        connection.execute(  # accepted a while ago: due for a sweep
            "UPDATE command_deliveries SET created_at = now() - make_interval(secs => %s) "
            "WHERE idempotency_key = %s",
            (age_seconds, command.key),
        )
    return command


class RecordingPublisher:
    """Stands in for the broker: remembers the trace context of each send."""

    def __init__(self) -> None:
        self.sent: dict[str, str | None] = {}

    def send(self, task_name: str, key: str, message: dict[str, Any]) -> None:
        carrier = tracing.context_carrier()
        self.sent[key] = carrier["traceparent"].split("-")[1] if carrier else None

    def close(self) -> None:
        pass


def trace_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


def test_the_context_is_stored_with_the_command_and_nothing_when_untraced(traced, engine):
    carrier, trace_id = request_context(traced)
    traced_command, plain = accept(engine, carrier), accept(engine, None)

    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                text(
                    "SELECT idempotency_key, trace_context FROM command_deliveries "
                    "WHERE idempotency_key = ANY(:keys)"
                ),
                {"keys": [traced_command.key, plain.key]},
            ).all()
        )
        connection.execute(
            text(
                "UPDATE command_deliveries SET published_at = now() WHERE idempotency_key = ANY(:k)"
            ),
            {"k": [traced_command.key, plain.key]},
        )
        connection.commit()

    assert trace_of(stored[traced_command.key]["traceparent"]) == trace_id
    assert stored[plain.key] is None


def test_the_relay_publishes_from_memory_and_from_its_sweep_inside_the_stored_context(
    traced, settings, engine
):
    carrier, trace_id = request_context(traced)
    swept = accept(engine, carrier, age_seconds=60)  # its process died before publishing
    relay = Relay(settings, engine, sweep_seconds=60, grace_seconds=30, queue_size=10)
    relay._publisher = recorder = RecordingPublisher()  # type: ignore[assignment]
    from_memory = UpsertProduct(key=unique("mem"), sku=unique("T"), name="Mug", price_cents=1)

    relay._publish(
        [Accepted(from_memory.key, from_memory.task_name, from_memory.message(), carrier)]
    )
    relay._sweep()

    assert recorder.sent[from_memory.key] == trace_id
    assert recorder.sent[swept.key] == trace_id


def test_maintenance_republishes_an_unpublished_command_inside_its_stored_context(
    traced, settings, engine
):
    carrier, trace_id = request_context(traced)
    command = accept(engine, carrier, age_seconds=120)
    untraced = accept(engine, None, age_seconds=120)
    recorder = RecordingPublisher()

    republish_stuck(
        settings.model_copy(update={"unpublished_command_after_seconds": 60}),
        engine,
        lambda task_name, key, message: recorder.send(task_name, key, message),
    )

    assert recorder.sent[command.key] == trace_id
    # no context stored: sent in the maintenance run's own trace (here: its transaction's)
    assert recorder.sent[untraced.key] != trace_id
