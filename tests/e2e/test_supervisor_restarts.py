"""The supervisor behind `orderq up` restarts a child that crashes, with a backoff that
doubles and a bound, reporting each restart — with small throwaway child programs."""

from __future__ import annotations

import contextlib
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderq.cli.supervisor import Child, RestartPolicy, Supervisor
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e

FAST = RestartPolicy(max_restarts=3, window=60, first_delay=0.2, max_delay=0.8, stable_after=30)


def crashing_child(runs: Path, crash_after: float = 0.3, code: int = 3) -> Child:
    """Counts its runs in `runs`, says it is ready, then exits with `code`."""
    program = textwrap.dedent(
        f"""
        import pathlib, sys, time
        runs = pathlib.Path({str(runs)!r})
        runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else "1")
        print("ready now", flush=True)
        time.sleep({crash_after})
        sys.exit({code})
        """
    )
    return Child("worker", [sys.executable, "-c", program], ready_text="ready now", quiet=True)


def steady_child() -> Child:
    program = "import time; print('ready now', flush=True); time.sleep(600)"
    return Child("beat", [sys.executable, "-c", program], ready_text="ready now", quiet=True)


def test_a_child_that_keeps_crashing_is_restarted_with_backoff_then_given_up_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    runs = tmp_path / "runs"
    supervisor = Supervisor([crashing_child(runs), steady_child()], policy=FAST)
    supervisor.start()
    try:
        assert supervisor.wait_ready(30) is None
        given_up = supervisor.watch()
    finally:
        supervisor.stop(timeout=5)

    assert given_up is not None
    child, why = given_up
    assert child.name == "worker"
    assert why == "worker exited with code 3 and was restarted 3 times in 60 s already: giving up"
    assert runs.read_text() == "4"  # the first run and three restarts
    output = capsys.readouterr().out
    for delay, number in (("0.2", 1), ("0.4", 2), ("0.8", 3)):
        assert f"restarting it in {delay} s (restart {number} of at most 3 in 60 s)" in output
    assert output.count("worker restarted (pid") == 3


@contextlib.contextmanager
def watched(supervisor: Supervisor) -> Iterator[threading.Thread]:
    """The supervisor started and watching in a thread; stopped (like Ctrl-C) after."""
    supervisor.start()
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    try:
        assert supervisor.wait_ready(30) is None
        watcher.start()
        yield watcher
    finally:
        supervisor.stopping.set()
        if watcher.is_alive():
            watcher.join(10)
        supervisor.stop(timeout=5)


def test_a_restarted_child_runs_again_and_stop_ends_everything(tmp_path: Path):
    runs = tmp_path / "runs"
    supervisor = Supervisor([crashing_child(runs, crash_after=0.2)], policy=FAST)

    with watched(supervisor) as watcher:
        eventually(lambda: runs.read_text() == "2", what="the crashed child started again")

    assert not watcher.is_alive()
    assert not supervisor.children[0].running()


def test_a_child_that_ran_long_enough_starts_over_at_the_first_delay(tmp_path: Path, capsys):
    policy = RestartPolicy(max_restarts=5, first_delay=0.2, max_delay=5, stable_after=0.1)
    runs = tmp_path / "runs"
    supervisor = Supervisor([crashing_child(runs, crash_after=0.3)], policy=policy)

    with watched(supervisor):
        eventually(lambda: runs.read_text() == "3", what="two restarts")

    output = capsys.readouterr().out
    assert "restarting it in 0.2 s (restart 2 of" in output  # not 0.4: it had run 0.3 s
