"""`orderq up` as a new user runs it: no URLs set, embedded servers in a fresh data
folder; Ctrl-C (and SIGTERM) stop everything, SIGKILL leaves nothing that blocks the
next start."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orderq.embedded import stop
from tests.support.cli import free_port
from tests.support.embedded import clean_environment, postmasters, redis_servers
from tests.support.eventually import eventually
from tests.support.failpoints import FailpointRecords
from tests.support.ids import unique
from tests.support.metrics import scrape
from tests.support.scratch import LOGS, scratch_dir, scratch_file
from tests.support.workers import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def orderq(data_dir: Path, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """One `orderq` command in the new user's environment."""
    return subprocess.run(
        [sys.executable, "-m", "orderq.cli", *arguments],
        cwd=PROJECT_ROOT,
        env=clean_environment(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Up:
    """`orderq up` in the background, its output in a file."""

    def __init__(self, data_dir: Path, port: int, **env: str) -> None:
        self.port = port
        self.api_port = free_port()
        self.metrics_port = free_port()
        self.log = scratch_file("up-", ".log")
        arguments = [
            "up",
            f"--flower-port={port}",
            f"--api-port={self.api_port}",
            f"--metrics-port={self.metrics_port}",
        ]
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orderq.cli", *arguments],
                cwd=PROJECT_ROOT,
                env=clean_environment(data_dir, COLUMNS="120", **env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the test can clean up its whole group if it fails
            )
        LOGS.register(self.log, lambda: self.process.poll() is None)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 150) -> None:
        """Until `orderq up` tells the user it is up (its own words: what is under test)."""
        eventually(
            lambda: "orderq is up" in self.output() or self.process.poll() is not None,
            what=f"`orderq up` up or exited (output: {self.log})",
            timeout=timeout,
            interval=0.2,
        )
        assert self.process.poll() is None, f"not up:\n{self.output()[-4000:]}"

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def flower_credentials(self) -> tuple[str, str]:
        found = re.search(r"user (\S+) · password (\S+)", self.output())
        assert found, self.output()[-2000:]
        return found.group(1), found.group(2)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def all_exit(processes: list[psutil.Process], timeout: float) -> None:
    eventually(
        lambda: alive(processes),
        until=lambda living: not living,
        what="every process exited",
        timeout=timeout,
        interval=0.1,
    )


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
    return living


def flower_status(port: int, credentials: tuple[str, str] | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/workers")
    if credentials:
        token = b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = scratch_dir("up-data-")
    yield folder
    stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ups() -> Iterator[list[Up]]:
    started: list[Up] = []
    yield started
    for up in started:
        up.cleanup()


def test_up_runs_the_stack_and_ctrl_c_stops_every_process(data_dir, ups):
    failpoints = FailpointRecords(scratch_dir("failpoints-up-"))
    up = Up(
        data_dir,
        free_port(),
        ORDERQ_FAILPOINTS="before_commit=pause@UPSTOP-",
        ORDERQ_FAILPOINT_DIR=str(failpoints.directory),
    )
    ups.append(up)
    up.wait_ready()
    processes = up.descendants()
    names = " ".join(" ".join(p.cmdline()) for p in processes)
    assert "orderq.cli worker" in names and "orderq.cli beat" in names
    assert "orderq.cli flower" in names
    assert "orderq.cli maintenance worker" in names
    assert "orderq.cli serve" in names
    assert "orderq.cli metrics serve" in names
    # worker + 2 pool processes, maintenance + 1, beat, flower, api + its server process,
    # metrics
    assert len(processes) >= 10
    with urllib.request.urlopen(f"http://127.0.0.1:{up.api_port}/readyz", timeout=10) as ready:
        assert json.loads(ready.read())["database"] == "ok"

    # Flower wants the printed development credentials.
    assert flower_status(up.port, None) == 401
    assert flower_status(up.port, up.flower_credentials()) == 200

    # Separate `orderq` commands reach the same embedded servers as the stack's worker.
    key, sku = unique("up-key"), unique("SKU")
    published = orderq(
        data_dir,
        "publish",
        "upsert-product",
        f"--key={key}",
        f"--sku={sku}",
        "--name=Mug",
        "--price=9.50",
    )
    assert published.returncode == 0, published.stderr
    assert "embedded PostgreSQL" in published.stderr and "embedded Redis" in published.stderr
    status = orderq(data_dir, "status", key, "--wait=60", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "succeeded"

    # The metrics server adds up what the stack's processes recorded.
    metrics = eventually(
        lambda: scrape(f"http://127.0.0.1:{up.metrics_port}/metrics"),
        until=lambda s: (
            s.value("orderq_commands_total", type="upsert_product", outcome="succeeded") == 1
        ),
        what="the upsert counted in the metrics",
    )
    assert metrics.value("orderq_metrics_source_up", source="database") == 1

    # Ctrl-C while a command waits before its commit: a warm shutdown lets it finish.
    in_flight = unique("UPSTOP")
    published = orderq(
        data_dir,
        "publish",
        "upsert-product",
        f"--key={in_flight}",
        "--sku=UP-1",
        "--name=M",
        "--price=1",
    )
    assert published.returncode == 0, published.stderr
    with failpoints.released_at_exit():
        [paused] = failpoints.wait_for(in_flight, timeout=60)
        up.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        eventually(
            lambda: "Warm shutdown" in up.output(),
            what="the worker's warm shutdown",
            interval=0.1,
        )
        failpoints.release(paused)
        assert up.process.wait(90) == 0, up.output()[-3000:]
    all_exit(processes, timeout=10)
    assert "stopped worker, maintenance, beat, flower, api and metrics" in up.output()
    # The servers outlive `up` (the next command reuses them) until `orderq down`.
    assert len(postmasters(data_dir)) == 1 and len(redis_servers(data_dir)) == 1
    finished = orderq(data_dir, "status", in_flight, "--json")
    assert json.loads(finished.stdout)["status"] == "succeeded", finished.stdout
    assert json.loads(finished.stdout)["attempts"] == 1  # finished, not redelivered
    down = orderq(data_dir, "down")
    assert down.returncode == 0, down.stderr
    assert "stopped the embedded PostgreSQL" in down.stdout
    assert not postmasters(data_dir) and not redis_servers(data_dir)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relies on PR_SET_PDEATHSIG")
def test_up_killed_with_sigkill_leaves_nothing_behind_and_starts_again(data_dir, ups):
    first = Up(data_dir, free_port())
    ups.append(first)
    first.wait_ready()
    orphans_to_be = first.descendants()

    first.process.kill()
    first.process.wait(10)

    all_exit(orphans_to_be, timeout=60)
    second = Up(data_dir, free_port())
    ups.append(second)
    second.wait_ready()
    assert len(postmasters(data_dir)) == 1
    assert len(redis_servers(data_dir)) == 1

    # Never two stacks on one data folder.
    third = orderq(
        data_dir,
        "up",
        f"--flower-port={free_port()}",
        f"--api-port={free_port()}",
        f"--metrics-port={free_port()}",
    )
    assert third.returncode == 1
    assert "orderq up is locked by another process" in third.stderr

    processes = second.descendants()
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(90) == 0, second.output()[-3000:]
    all_exit(processes, timeout=10)


def test_up_refuses_a_flower_port_in_use(data_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = orderq(data_dir, "up", f"--flower-port={port}")

    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr
    assert not postmasters(data_dir)  # refused before starting anything


def test_processes_left_by_a_killed_up_are_stopped_and_reused_pids_spared(data_dir):
    from orderq.cli.stack import _stop_leftovers

    leftover = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True
    )
    process = psutil.Process(leftover.pid)
    started = process.create_time()
    state = {
        "pid": 999_999,
        "children": [
            {"name": "worker", "pid": leftover.pid, "started": started},
            # this pid now belongs to another program (the test itself): not ours to stop
            {"name": "beat", "pid": os.getpid(), "started": 0.0},
        ],
    }
    (data_dir / "up.json").write_text(json.dumps(state))

    _stop_leftovers(data_dir)

    all_exit([process], timeout=10)
    leftover.wait(10)  # (already reaped by the stopper, which waited for it)
    assert not (data_dir / "up.json").exists()
