"""Housekeeping of the multiprocess metrics folder: live gauges of processes that are
gone are dropped, everything else stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orderq.observability.registry import MultiprocessFiles
from worker.adapters.metrics import forget_dead_processes, prepare_multiprocess_dir
from worker.settings import WorkerSettings


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_live_gauges_of_dead_processes_go_and_counters_stay(tmp_path: Path):
    gone, alive = dead_pid(), os.getpid()
    for name in (
        f"gauge_livesum_{gone}.db",
        f"gauge_liveall_{gone}.db",
        f"counter_{gone}.db",
        f"histogram_{gone}.db",
        f"gauge_livesum_{alive}.db",
        f"gauge_max_{gone}.db",
    ):
        (tmp_path / name).write_bytes(b"")

    swept = forget_dead_processes(WorkerSettings(prometheus_multiproc_dir=tmp_path))

    assert swept == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            f"counter_{gone}.db",  # its decisions stay counted
            f"histogram_{gone}.db",
            f"gauge_max_{gone}.db",  # last success times are not "live" gauges
            f"gauge_livesum_{alive}.db",
        ]
    )


def test_no_folder_configured_means_nothing_to_do(tmp_path: Path):
    assert forget_dead_processes(WorkerSettings()) == []
    assert prepare_multiprocess_dir(WorkerSettings()) is None


def test_the_folder_is_created_when_a_worker_starts(tmp_path: Path):
    folder = tmp_path / "not" / "yet"
    assert prepare_multiprocess_dir(WorkerSettings(prometheus_multiproc_dir=folder)) == folder
    assert folder.is_dir()


KILLED_WRITER = """
import os, signal
from prometheus_client import Counter, Gauge
Gauge("orderq_test_pool_busy", "busy", multiprocess_mode="livesum").set(5)
Counter("orderq_test_decided", "decided").inc(3)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_scrape_drops_the_live_gauges_of_a_writer_killed_without_a_word(tmp_path: Path):
    writer = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        check=False,
    )
    assert writer.returncode == -9  # SIGKILL: nothing ran to remove its files

    scraped = {
        sample.name: sample.value
        for metric in MultiprocessFiles(tmp_path).collect()
        for sample in metric.samples
    }

    assert "orderq_test_pool_busy" not in scraped  # its pool is gone, not 5 busy
    assert scraped["orderq_test_decided_total"] == 3  # what it decided stays counted
    assert not list(tmp_path.glob("gauge_livesum_*.db"))
