"""One HTTP POST, one trace: the API server's request span, the publish its relay thread
makes after the commit (outside the request, inside the context stored with the
command), the worker's task and the command's transaction up to its commit — across
three processes: the API server and the worker's pool process write their spans to
JSON-lines files (tests/support/traced_api.py, tests/support/traced_worker.py)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from orderq.http.api_keys import create_api_key
from tests.support.eventually import eventually
from tests.support.http_server import ApiServer, Client
from tests.support.ids import unique
from tests.support.rig import FaultRig
from tests.support.span_files import spans_in
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.e2e

EXPORT_SOON = {"OTEL_BSP_SCHEDULE_DELAY": "100"}  # export within 0.1 s instead of 5 s


def span_file(prefix: str) -> Path:
    return Path(tempfile.mkstemp(prefix=f"orderq-{prefix}-spans-", suffix=".jsonl")[1])


@pytest.fixture
def traced(migrated_database) -> Iterator[tuple[FaultRig, Path, Path]]:
    """A traced worker on a queue of its own, and the span files of it and the API."""
    rig, api_spans, worker_spans = FaultRig(), span_file("api"), span_file("worker")
    worker = WorkerProcess(
        1,
        # one command, one transaction, so the commit's span is in the command's trace
        # (a batch's transaction is shared: tests/e2e/test_trace_through_worker.py)
        env={
            **rig.env,
            **EXPORT_SOON,
            "ORDERQ_TEST_SPAN_FILE": str(worker_spans),
            "ORDERQ_BATCH_MAX_SIZE": "1",
        },
        name="traced-http",
        app="tests.support.traced_worker",
    )
    rig.workers.append(worker)
    worker.start()
    yield rig, api_spans, worker_spans
    rig.close()
    worker.log_path.unlink(missing_ok=True)
    api_spans.unlink(missing_ok=True)
    worker_spans.unlink(missing_ok=True)


@pytest.fixture
def traced_api(traced) -> Iterator[ApiServer]:
    rig, api_spans, _ = traced
    server = ApiServer(
        env={
            **rig.env,
            **EXPORT_SOON,
            "ORDERQ_TEST_SPAN_FILE": str(api_spans),
            # the sweep leaves other tests' unpublished commands to their own servers
            "ORDERQ_HTTP_RELAY_GRACE_SECONDS": "600",
        },
        command=[sys.executable, "-m", "tests.support.traced_api"],
    ).start()
    yield server
    server.stop()


def is_the_post(span: dict) -> bool:
    where = " ".join(
        str(v) for v in (span["name"], *span["attributes"].values()) if isinstance(v, str)
    )
    return span["kind"] == "SERVER" and "/v1/commands/upsert_product" in where


def test_one_http_post_yields_one_connected_trace_ending_in_the_commands_commit(
    traced, traced_api, engine
):
    _, api_file, worker_file = traced
    name = unique("traced").lower()
    client = Client(traced_api.url, create_api_key(engine, name).token, name)
    key = unique("traced-http")

    answer = client.post(
        "/v1/commands/upsert_product",
        {"sku": unique("T"), "name": "Traced mug", "price_cents": 900},
        key=key,
        wait=30,
    )
    client.close()

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded"
    (request,) = eventually(
        lambda: [s for s in spans_in(api_file) if is_the_post(s)],
        what="the API server's span of the POST",
    )
    trace_id = request["trace_id"]
    assert request["parent_id"] is None and request["service"] == "orderq-api"
    api = eventually(
        lambda: spans_in(api_file, trace_id),
        until=lambda found: any(s["name"].startswith("apply_async/") for s in found),
        what="the relay's publish span in the request's trace",
    )
    worker = eventually(
        lambda: spans_in(worker_file, trace_id),
        until=lambda found: any(
            s["attributes"].get("db.transaction.outcome") == "commit" for s in found
        ),
        what="the worker's spans of the command, in the request's trace, its commit included",
    )

    (publish,) = [s for s in api if s["name"] == "apply_async/orderq.orders.upsert_product"]
    assert publish["kind"] == "PRODUCER"
    assert publish["pid"] == request["pid"]  # the relay thread of the same server process
    (run,) = [s for s in worker if s["name"] == "run/orderq.orders.upsert_product"]
    assert run["parent_id"] == publish["span_id"]  # via the message headers
    assert run["service"] == "orderq-worker" and run["pid"] != request["pid"]
    assert run["attributes"]["orderq.key"] == f"@{name}/{key}"
    (commit,) = [s for s in worker if s["attributes"].get("db.transaction.outcome") == "commit"]
    assert commit["parent_id"] == run["span_id"]
    inside = [s for s in worker if s["parent_id"] == commit["span_id"]]
    statements = " ".join(s["attributes"].get("db.statement", "") for s in inside)
    assert "INSERT INTO products" in statements and "UPDATE command_ledger" in statements
    # one tree: every span of the trace, in either process, hangs off the request's span
    by_id = {s["span_id"]: s for s in [*api, *worker]}
    for span in by_id.values():
        top = span
        while top["parent_id"] in by_id:
            top = by_id[top["parent_id"]]
        assert top["span_id"] == request["span_id"], span["name"]
    # the accepted command keeps the request's context: what a later sweep publishes in
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT trace_context FROM command_deliveries WHERE idempotency_key = :k"),
            {"k": f"@{name}/{key}"},
        ).scalar_one()
    assert stored["traceparent"].split("-")[1] == trace_id
