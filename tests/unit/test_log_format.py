"""ORDERQ_LOG_FORMAT: the human format by default, one JSON object per line with json."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from tests.support.workers import PROJECT_ROOT
from worker.entrypoints.log_format import json_formatter


def render(record: logging.LogRecord) -> dict:
    return json.loads(json_formatter().format(record))


def record(message: str, *args: object, level: int = logging.INFO, **extra: object):
    made = logging.LogRecord("orderq.test", level, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_record_becomes_one_json_object_with_its_fields():
    line = json_formatter().format(record("command %s", "succeeded", key="web-1", attempt=2))

    assert "\n" not in line
    data = json.loads(line)
    assert data["event"] == "command succeeded"
    assert (data["level"], data["logger"]) == ("info", "orderq.test")
    assert data["timestamp"].endswith("Z")
    assert (data["key"], data["attempt"]) == ("web-1", 2)


def test_an_exception_is_one_field_of_the_same_line():
    try:
        raise ValueError("bad thing")
    except ValueError:
        failed = logging.LogRecord(
            "orderq.test", logging.ERROR, __file__, 1, "it broke", (), sys.exc_info()
        )

    data = render(failed)

    assert data["level"] == "error" and data["event"] == "it broke"
    assert "ValueError: bad thing" in data["exception"]
    assert "Traceback" in data["exception"]


def test_nested_values_stay_json():
    data = render(record("purge done", figures={"deleted": 3, "more": False}))
    assert data["figures"] == {"deleted": 3, "more": False}


def run_logging(fmt: str) -> str:
    """What a fresh process configured by orderq writes for a few log calls."""
    script = (
        "import logging\n"
        "from worker.entrypoints.log_format import configure_logging\n"
        "from worker.settings import WorkerSettings\n"
        "configure_logging(WorkerSettings())\n"
        "logging.getLogger('orderq.decisions').info('command %s', 'succeeded', "
        "extra={'key': 'k-1'})\n"
        "logging.getLogger('celery.app.trace').info('Task x succeeded in 0.01s')\n"
        "logging.getLogger('celery.app.trace').warning('Task x retry')\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={"ORDERQ_LOG_FORMAT": fmt, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stderr


def test_json_format_every_line_is_json_and_celery_per_task_lines_are_left_out():
    lines = run_logging("json").splitlines()

    events = [json.loads(line) for line in lines]
    assert [(e["logger"], e["event"]) for e in events] == [
        ("orderq.decisions", "command succeeded"),
        ("celery.app.trace", "Task x retry"),
    ]
    assert events[0]["key"] == "k-1"


def test_the_human_format_is_the_default_and_unchanged():
    lines = run_logging("human").splitlines()

    assert len(lines) == 3
    assert lines[0].endswith(" INFO orderq.decisions: command succeeded")
    assert not any(line.startswith("{") for line in lines)
