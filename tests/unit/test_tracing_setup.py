"""Tracing is off unless OTEL_* variables configure it, and the install without the
`tracing` extra never imports opentelemetry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from producers.errors import ConfigurationError
from tests.support.workers import PROJECT_ROOT
from worker.adapters.tracing import check_tracing, configure_tracing, tracing_requested
from worker.settings import WorkerSettings


@pytest.mark.parametrize(
    ("variables", "requested"),
    [
        ({}, False),
        ({"otel_traces_exporter": "none"}, False),
        ({"otel_traces_exporter": "otlp"}, True),
        ({"otel_traces_exporter": "console"}, True),
        ({"otel_exporter_otlp_endpoint": "http://collector:4318"}, True),
        ({"otel_exporter_otlp_traces_endpoint": "http://collector:4318/v1/traces"}, True),
        ({"otel_traces_exporter": "none", "otel_exporter_otlp_endpoint": "http://c:4318"}, False),
        ({"otel_traces_exporter": "otlp", "otel_sdk_disabled": True}, False),
    ],
)
def test_tracing_is_on_only_when_an_exporter_is_configured(variables, requested):
    assert tracing_requested(WorkerSettings(**variables)) is requested


def test_the_standard_variable_names_are_read():
    settings = WorkerSettings.model_validate(
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "orderq-eu"}
    )
    assert (settings.otel_traces_exporter, settings.otel_service_name) == ("console", "orderq-eu")


def test_off_means_nothing_is_configured():
    assert configure_tracing(WorkerSettings(), service_name="orderq-worker") is None


def test_an_unknown_exporter_or_protocol_is_refused_with_a_clear_reason():
    with pytest.raises(ConfigurationError, match="no such span exporter"):
        check_tracing(WorkerSettings(otel_traces_exporter="jaegerr"))
    with pytest.raises(ConfigurationError, match="use http/protobuf or grpc"):
        check_tracing(
            WorkerSettings(otel_traces_exporter="otlp", otel_exporter_otlp_protocol="carrier")
        )


WITHOUT_OPENTELEMETRY = """
import sys

class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoOpenTelemetry())
"""


def run_without_extra(code: str, **env: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter where opentelemetry cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENTELEMETRY + code],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_install_without_the_extra_runs_and_never_imports_opentelemetry():
    finished = run_without_extra(
        "import worker.entrypoints.tasks, worker.entrypoints.maintenance.tasks\n"
        "import orderq.cli.main, orderq.observability.asgi, orderq.observability.server\n"
        "from worker.entrypoints.celery_app import app\n"
        "from worker.adapters import tracing\n"
        "app.start_tracing('orderq-worker')\n"
        "assert tracing.active() is None and tracing.current_trace_id() is None\n"
        "assert tracing.context_carrier() is None\n"
        "with tracing.continued({'traceparent': '00-' + '1' * 32 + '-' + '2' * 16 + '-01'}):\n"
        "    pass\n"
        # the relay's and the maintenance re-publisher's side of a stored context
        "import orderq.http.relay, worker.service.maintenance.republish\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
        "print('ok')\n"
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "ok"


def test_asking_for_traces_without_the_extra_names_the_extra():
    finished = run_without_extra(
        "from worker.adapters.tracing import check_tracing\n"
        "from worker.settings import WorkerSettings\n"
        "check_tracing(WorkerSettings())\n",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
    )
    assert finished.returncode != 0
    assert "pip install 'orderq[tracing]'" in finished.stderr
