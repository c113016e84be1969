"""The worker's composition root records every kind of outcome once, with its attempts
and latency, and every maintenance run by result — the worker's own runner and jobs,
in-process, on the real database."""

from __future__ import annotations

import logging
import time

import pytest
from prometheus_client import REGISTRY

from producers.commands import PlaceOrder, UpsertProduct
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from worker.adapters.advisory_locks import advisory_lock
from worker.service.bootstrap import bootstrap
from worker.service.failpoints import Failpoints
from worker.service.maintenance.catalog import JOBS_BY_NAME, Job
from worker.service.maintenance.statistics import INDEX_HEALTH_TASK
from worker.service.runner import RetryLater

TYPES = ("place_order", "upsert_product")
OUTCOMES = ("succeeded", "rejected", "failed", "replayed", "reused")


def snapshot() -> dict[tuple[str, ...], float]:
    """The command counters of this process, for a before/after difference."""
    values = {}
    for kind in TYPES:
        for outcome in OUTCOMES:
            labels = {"type": kind, "outcome": outcome}
            values[("commands", kind, outcome)] = REGISTRY.get_sample_value(
                "orderq_commands_total", labels
            )
        values[("attempts", kind)] = REGISTRY.get_sample_value(
            "orderq_command_attempts_total", {"type": kind}
        )
        values[("decisions", kind)] = REGISTRY.get_sample_value(
            "orderq_decision_seconds_count", {"type": kind}
        )
    return {key: value or 0.0 for key, value in values.items()}


def moved(before: dict, after: dict) -> dict:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


@pytest.fixture
def services(settings, engine):
    """Wired like a worker process: bootstrap(), with a failpoint for dead letters."""
    return bootstrap(
        settings.model_copy(update={"max_unknown_error_attempts": 2}),
        send_command=lambda *_: None,
        engine=engine,
        failpoints=Failpoints("before_commit=bug@TELEMETRY-DEAD-"),
    )


def test_each_outcome_is_counted_once_with_its_attempts_and_latency(services):
    runner = services.runner
    sku, empty = new_product(runner, stock=10), new_product(runner, stock=0)
    before = snapshot()

    first = order_for(sku)
    run(runner, first)
    run(runner, order_for(sku))
    run(runner, order_for(empty))  # insufficient_stock
    assert run(runner, first).replayed
    reuse = PlaceOrder(key=first.key, customer_ref="other", lines=[{"sku": sku, "qty": 2}])
    assert run(runner, reuse).reason == "idempotency_key_reused"
    invalid = runner.run({"type": "place_order", "key": unique("bad")}, "place_order")
    assert invalid.reason == "invalid_command"
    doomed = UpsertProduct(key=unique("TELEMETRY-DEAD"), sku=unique("S"), name="x", price_cents=1)
    assert isinstance(runner.run(doomed.message(), doomed.type), RetryLater)
    assert runner.run(doomed.message(), doomed.type, retries=1).status == "failed"
    assert runner.run(doomed.message(), doomed.type, retries=2).replayed  # the dead letter again

    assert moved(before, snapshot()) == {
        ("commands", "place_order", "succeeded"): 2,
        ("commands", "place_order", "rejected"): 2,  # insufficient stock, invalid command
        ("commands", "place_order", "replayed"): 1,
        ("commands", "place_order", "reused"): 1,
        ("commands", "upsert_product", "failed"): 1,
        ("commands", "upsert_product", "replayed"): 1,
        ("attempts", "place_order"): 3,  # replays, reuses and invalid messages use none
        ("attempts", "upsert_product"): 2,
        ("decisions", "place_order"): 3,
        ("decisions", "upsert_product"): 1,
    }


def runs(task: str, result: str) -> float:
    labels = {"task": task, "result": result}
    return REGISTRY.get_sample_value("orderq_maintenance_runs_total", labels) or 0.0


def test_maintenance_runs_are_counted_by_result_and_logged_once_each(services, engine, caplog):
    job = JOBS_BY_NAME[INDEX_HEALTH_TASK]  # read-only: changes nothing other tests see
    before = {result: runs(job.name, result) for result in ("succeeded", "skipped")}
    started = time.time()

    with caplog.at_level(logging.INFO, logger="orderq.maintenance"):
        report = job.perform(services.maintenance)
        with advisory_lock(engine, job.name) as held:
            assert held
            assert job.perform(services.maintenance).skipped is not None

    assert runs(job.name, "succeeded") - before["succeeded"] == 1
    assert runs(job.name, "skipped") - before["skipped"] == 1
    last = REGISTRY.get_sample_value(
        "orderq_maintenance_last_success_timestamp_seconds", {"task": job.name}
    )
    assert started <= last <= time.time()
    lines = [r for r in caplog.records if r.name == "orderq.maintenance"]
    assert [r.result for r in lines] == ["succeeded", "skipped"]
    assert lines[0].task == job.name and lines[0].figures == report.figures


def test_a_failing_job_is_counted_and_its_error_raised(services, caplog):
    name = unique("broken").lower()

    def explode(_):
        raise RuntimeError("statement timeout")

    broken = Job(name, "schedule_analyze_seconds", explode, "always fails")

    with (
        caplog.at_level(logging.INFO, logger="orderq.maintenance"),
        pytest.raises(RuntimeError, match="statement timeout"),
    ):
        broken.perform(services.maintenance)

    assert runs(name, "failed") == 1 and runs(name, "succeeded") == 0
    (line,) = [r for r in caplog.records if r.name == "orderq.maintenance"]
    assert line.levelno == logging.ERROR and line.result == "failed"
    assert "RuntimeError: statement timeout" in line.error
