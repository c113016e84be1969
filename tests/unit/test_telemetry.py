"""What the worker's observer records for each kind of delivery and maintenance run
(metrics in this process's registry, the JSON decision line)."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from tests.support.ids import unique
from worker.adapters import metrics
from worker.entrypoints.log_format import json_formatter
from worker.service.maintenance.report import RunReport
from worker.service.observer import Delivery
from worker.service.outcome import Outcome
from worker.service.runner import RetryLater
from worker.service.telemetry import Telemetry, outcome_label
from worker.settings import WorkerSettings


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def command_type() -> str:
    """A label value of its own, so counts start at zero whatever ran before."""
    return unique("type").lower()


def counted(kind: str, accepted_seconds_ago: float = 2.0) -> Delivery:
    delivery = Delivery(kind)
    delivery.counted(unique("key"), 1, accepted_seconds_ago)
    return delivery


@pytest.fixture
def decision_lines() -> Iterator[io.StringIO]:
    """What the `orderq.decisions` logger writes, rendered by the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("orderq.decisions")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        (Outcome.succeeded("k", {}), "succeeded"),
        (Outcome.rejected("k", "insufficient_stock", "short"), "rejected"),
        (Outcome.rejected("k", "invalid_command", "bad field"), "rejected"),
        (Outcome.failed("k", "gave up"), "failed"),
        (Outcome.succeeded("k", {}).as_replay(), "replayed"),
        (Outcome.rejected("k", "insufficient_stock", "short").as_replay(), "replayed"),
        (Outcome.failed("k", "dead letter").as_replay(), "replayed"),
        (Outcome.rejected("k", "idempotency_key_reused", "other payload"), "reused"),
    ],
)
def test_each_outcome_has_its_label(outcome, label):
    assert outcome_label(outcome) == label


def test_a_decision_counts_once_with_its_latency_from_accept():
    kind, telemetry = command_type(), Telemetry(WorkerSettings())
    delivery = counted(kind, accepted_seconds_ago=2.0)

    telemetry.attempt_counted(delivery)
    telemetry.finished(delivery, Outcome.succeeded(delivery.key, {"order_number": "ORD-1"}))

    assert sample("orderq_commands_total", type=kind, outcome="succeeded") == 1
    assert sample("orderq_command_attempts_total", type=kind) == 1
    assert sample("orderq_decision_seconds_count", type=kind) == 1
    assert 2.0 <= sample("orderq_decision_seconds_sum", type=kind) < 60
    assert sample("orderq_decision_seconds_bucket", type=kind, le="1.0") == 0
    assert sample("orderq_decision_seconds_bucket", type=kind, le="2.5") == 1


def test_replays_and_reuses_count_but_are_not_decisions():
    kind, telemetry = command_type(), Telemetry(WorkerSettings())

    telemetry.finished(Delivery(kind), Outcome.succeeded("k", {}).as_replay())
    telemetry.finished(Delivery(kind), Outcome.rejected("k", "idempotency_key_reused", "x"))

    assert sample("orderq_commands_total", type=kind, outcome="replayed") == 1
    assert sample("orderq_commands_total", type=kind, outcome="reused") == 1
    assert sample("orderq_decision_seconds_count", type=kind) == 0
    assert sample("orderq_command_attempts_total", type=kind) == 0


def test_a_retry_is_an_attempt_but_not_an_outcome():
    kind, telemetry = command_type(), Telemetry(WorkerSettings())
    delivery = counted(kind)

    telemetry.attempt_counted(delivery)
    telemetry.finished(delivery, RetryLater(0.5, "deadlock detected"))

    assert sample("orderq_command_attempts_total", type=kind) == 1
    for outcome in ("succeeded", "rejected", "failed", "replayed", "reused"):
        assert sample("orderq_commands_total", type=kind, outcome=outcome) == 0


def test_an_invalid_message_is_a_rejection_without_an_attempt_or_latency():
    kind, telemetry = command_type(), Telemetry(WorkerSettings())

    telemetry.finished(Delivery(kind), Outcome.rejected("k", "invalid_command", "qty: > 0"))

    assert sample("orderq_commands_total", type=kind, outcome="rejected") == 1
    assert sample("orderq_decision_seconds_count", type=kind) == 0


def test_json_format_logs_one_line_per_outcome_with_what_happened(decision_lines):
    kind = command_type()
    telemetry = Telemetry(WorkerSettings(log_format="json"))
    delivery = counted(kind, accepted_seconds_ago=0.25)

    telemetry.finished(delivery, Outcome.rejected(delivery.key, "insufficient_stock", "short"))
    telemetry.finished(Delivery(kind, key=delivery.key), Outcome.failed("k", "x").as_replay())

    first, second = (json.loads(line) for line in decision_lines.getvalue().splitlines())
    assert first["event"] == "command rejected"
    assert first["logger"] == "orderq.decisions" and first["level"] == "info"
    assert (first["key"], first["type"], first["outcome"]) == (delivery.key, kind, "rejected")
    assert (first["status"], first["reason"], first["attempt"]) == (
        "rejected",
        "insufficient_stock",
        1,
    )
    assert first["duration_ms"] >= 0 and first["decision_latency_s"] >= 0.25
    assert "trace_id" not in first  # tracing is off in this process
    assert (second["outcome"], second["status"], second["attempt"]) == ("replayed", "failed", None)


def test_the_human_format_adds_no_line_per_command(decision_lines):
    telemetry = Telemetry(WorkerSettings(log_format="human"))

    telemetry.finished(counted(command_type()), Outcome.succeeded("k", {}))

    assert decision_lines.getvalue() == ""


def test_maintenance_runs_by_result_and_the_last_success_time():
    job, telemetry = unique("job").lower(), Telemetry(WorkerSettings())
    before = time.time()

    telemetry.maintenance_run(job, RunReport(job, figures={"expired": 3}), 0.2, None)
    telemetry.maintenance_run(job, RunReport(job, skipped="held"), 0.01, None)
    telemetry.maintenance_run(job, None, 0.5, RuntimeError("database gone"))

    for result in ("succeeded", "skipped", "failed"):
        assert sample("orderq_maintenance_runs_total", task=job, result=result) == 1
    last = sample("orderq_maintenance_last_success_timestamp_seconds", task=job)
    assert before <= last <= time.time()


def test_a_broken_metric_never_breaks_a_command(monkeypatch, caplog):
    class Broken:
        def labels(self, *_: str) -> None:
            raise OSError("metrics folder is gone")

    monkeypatch.setattr(metrics, "COMMANDS", Broken())
    monkeypatch.setattr(metrics, "ATTEMPTS", Broken())
    telemetry = Telemetry(WorkerSettings())
    delivery = counted(command_type())

    with caplog.at_level(logging.WARNING, logger="orderq.decisions"):
        telemetry.attempt_counted(delivery)
        telemetry.finished(delivery, Outcome.succeeded("k", {}))

    complaints = [r for r in caplog.records if "could not record metrics" in r.getMessage()]
    assert len(complaints) == 1  # once per process, not once per command
    assert "metrics folder is gone" in complaints[0].getMessage()
