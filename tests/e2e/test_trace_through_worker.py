"""One command, one trace: the publisher's span, the worker's task span (its context
carried in the message headers), the command's transaction and its statements up to the
commit — across two processes, with OpenTelemetry's in-memory exporter on the publishing
side and a JSON-lines file exporter in the worker's pool processes
(tests/support/traced_worker.py)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from producers.commands import UpsertProduct
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.outcomes import await_outcome
from tests.support.rig import FaultRig
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def published_spans() -> Iterator[InMemorySpanExporter]:
    """Celery instrumented in this process (the publisher's side) for one test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield exporter
    instrumentor.uninstrument()
    provider.shutdown()


@pytest.fixture
def span_file() -> Iterator[Path]:
    path = Path(tempfile.mkstemp(prefix="orderq-spans-", suffix=".jsonl")[1])
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def rig(migrated_database) -> Iterator[FaultRig]:
    rig = FaultRig()
    yield rig
    rig.close()
    for worker in rig.workers:
        worker.log_path.unlink(missing_ok=True)


def worker_spans(path: Path, trace_id: str) -> list[dict]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [span for span in map(json.loads, lines) if span["trace_id"] == trace_id]


def traced_upsert(rig, published_spans, span_file, engine, **env: str):
    """A traced worker decides one upsert; returns the worker, the command, the
    publisher's span and its trace id."""
    worker = WorkerProcess(
        2,
        env={
            **rig.env,
            "ORDERQ_TEST_SPAN_FILE": str(span_file),
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s instead of 5 s
            **env,
        },
        name="traced",
        app="tests.support.traced_worker",
    )
    rig.workers.append(worker)
    worker.start()
    command = UpsertProduct(key=unique("traced"), sku=unique("T"), name="Mug", price_cents=900)

    with rig.publisher() as publisher:
        publisher.publish(command)
    assert await_outcome(engine, command.key).status == "succeeded"

    (publish,) = published_spans.get_finished_spans()
    return worker, command, publish, format(publish.context.trace_id, "032x")


def test_one_command_yields_one_connected_trace_from_publish_to_commit(
    rig, published_spans, span_file, engine
):
    worker, command, publish, trace_id = traced_upsert(
        rig,
        published_spans,
        span_file,
        engine,
        ORDERQ_LOG_FORMAT="json",
        # one command, one transaction: a batch's transaction is shared by its commands
        # (each still gets its run span in its publish's trace, see below)
        ORDERQ_BATCH_MAX_SIZE="1",
    )

    assert publish.name == "apply_async/orderq.orders.upsert_product"
    assert publish.parent is None  # the trace starts at the publish
    spans = eventually(
        lambda: worker_spans(span_file, trace_id),
        until=lambda found: any(
            s["attributes"].get("db.transaction.outcome") == "commit" for s in found
        ),
        what="the worker's spans of the command, its committed transaction included",
    )

    by_id = {span["span_id"]: span for span in spans}
    (run,) = [s for s in spans if s["name"] == "run/orderq.orders.upsert_product"]
    assert run["parent_id"] == format(publish.context.span_id, "016x")  # via the headers
    assert run["kind"] == "CONSUMER" and run["service"] == "orderq-worker"
    assert run["attributes"]["orderq.key"] == command.key
    assert run["attributes"]["orderq.outcome"] == "succeeded"
    (transaction,) = [s for s in spans if s["attributes"].get("db.transaction.outcome") == "commit"]
    assert transaction["parent_id"] == run["span_id"]
    inside = [s for s in spans if s["parent_id"] == transaction["span_id"]]
    statements = " ".join(s["attributes"].get("db.statement", "") for s in inside)
    assert "INSERT INTO command_ledger" in statements  # the claim
    assert "INSERT INTO products" in statements  # the handler's write
    assert "UPDATE command_ledger" in statements  # the outcome, just before COMMIT
    assert transaction["end"] >= max(s["end"] for s in inside)
    # every span of the trace hangs off the publish: one connected tree
    for span in spans:
        parent = span["parent_id"]
        while parent in by_id:
            parent = by_id[parent]["parent_id"]
        assert parent == format(publish.context.span_id, "016x"), span["name"]

    # the decision's JSON log line carries the same trace id
    decisions = [
        json.loads(line)
        for line in worker.log_text().splitlines()
        if line.startswith("{") and '"orderq.decisions"' in line
    ]
    (decision,) = [d for d in decisions if d["key"] == command.key]
    assert decision["trace_id"] == trace_id


def test_a_batched_command_runs_in_its_publishs_trace(rig, published_spans, span_file, engine):
    """Batched (the default), a command's run span still hangs off its publish, with its
    handler's statements inside; the batch's shared transaction stays outside."""
    _, command, publish, trace_id = traced_upsert(rig, published_spans, span_file, engine)

    spans = eventually(
        lambda: worker_spans(span_file, trace_id),
        until=lambda found: any(s["name"] == "run/orderq.orders.upsert_product" for s in found),
        what="the batched command's run span",
    )
    (run,) = [s for s in spans if s["name"] == "run/orderq.orders.upsert_product"]
    assert run["parent_id"] == format(publish.context.span_id, "016x")
    assert run["attributes"]["orderq.key"] == command.key
    assert run["attributes"]["orderq.batch_size"] >= 1
    inside = [s for s in spans if s["parent_id"] == run["span_id"]]
    assert "INSERT INTO products" in " ".join(
        s["attributes"].get("db.statement", "") for s in inside
    )
