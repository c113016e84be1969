"""Housekeeping of the multiprocess metrics folder: live gauges of processes that are
gone are dropped, everything else stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
