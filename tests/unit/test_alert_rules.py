"""The shipped Prometheus alert rules parse, name only metrics orderq exports, and each
has a promtool unit test (run here when promtool is installed; CI installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from orderq.observability import asgi, collector
from worker.adapters import metrics

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "orderq-alerts.yml"
RULE_TESTS = RULES_DIR / "orderq-alerts.test.yml"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_series_names() -> set[str]:
    """Every series name orderq's /metrics can show."""
    names = set(collector.GAUGES)
    for module in (metrics, asgi):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                for family in value.describe():
                    names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def test_every_rule_is_a_complete_alert():
    found = rules()
    assert len(found) >= 6
    names = [rule["alert"] for rule in found]
    assert len(set(names)) == len(names), "alert names repeat"
    for rule in found:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_rules_cover_what_operators_asked_to_be_told():
    expressions = " ".join(rule["expr"] for rule in rules())
    for needed in (
        "orderq_dead_letters",
        "orderq_quarantined_messages",
        "orderq_queue_oldest_age_seconds",
        "orderq_queue_depth",
        "orderq_maintenance_runs_total",
        "orderq_maintenance_last_success_timestamp_seconds",
        "orderq_db_pool_waits_total",
    ):
        assert needed in expressions, needed


def test_rules_only_name_metrics_orderq_exports():
    exported = exported_series_names()
    for rule in rules():
        for name in re.findall(r"\borderq_[a-z_]+", rule["expr"]):
            assert name in exported, f"{rule['alert']} reads {name}, which orderq never exports"


def test_every_alert_has_a_promtool_unit_test():
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert {rule["alert"] for rule in rules()} <= tested


promtool = shutil.which("promtool")


@pytest.mark.skipif(promtool is None, reason="promtool not installed (.ci/run installs it)")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    for arguments in (["check", "rules", RULES.name], ["test", "rules", RULE_TESTS.name]):
        checked = subprocess.run(
            [promtool, *arguments], cwd=RULES_DIR, capture_output=True, text=True, timeout=120
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
