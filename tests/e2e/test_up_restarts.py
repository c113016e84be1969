"""`orderq up` keeps the stack up when a worker crashes: the worker is restarted after a
reported backoff, and one that keeps crashing stops the stack with one clear error —
on the real servers (the test database and broker), with a private queue.

The crash loop is made the way a bug below the guard would make it: the `receive`
failpoint raises in the worker's main process for one message, which comes back after
every restart. The worker must exit with an error status each time (Celery's exit
status used to be dropped by `orderq worker`, so a crash looked like a clean stop).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orderq.settings import Settings
from producers.commands import UpsertProduct
from producers.outcomes import lookup
from producers.publisher import Publisher
from tests.support.cli import free_port
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.raw_messages import celery_body, clean_redis_queue, publish, task_headers, upsert
from tests.support.workers import PROJECT_ROOT

pytestmark = pytest.mark.e2e


class Stack:
    """`orderq up` on the test servers with a queue of its own, its output in a file."""

    def __init__(self, *arguments: str, **env: str) -> None:
        self.queue = f"{unique('up').lower()}.commands"
        self.data_dir = Path(tempfile.mkdtemp(prefix="orderq-up-restarts-"))
        self.log = self.data_dir / "up.log"
        self.settings = Settings(command_queue=self.queue)
        environment = {
            **os.environ,
            "ORDERQ_COMMAND_QUEUE": self.queue,
            "ORDERQ_MAINTENANCE_QUEUE": f"{self.queue}.maintenance",
            "ORDERQ_DATA_DIR": str(self.data_dir),
            "COLUMNS": "200",
            **env,
        }
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orderq.cli",
                    "up",
                    f"--flower-port={free_port()}",
                    *arguments,
                ],
                cwd=PROJECT_ROOT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 150) -> None:
        eventually(
            lambda: text in self.output() or self.process.poll() is not None,
            what=f"`orderq up` to print {text!r}",
            timeout=timeout,
            interval=0.2,
        )
        assert text in self.output(), self.output()[-4000:]

    def worker(self) -> psutil.Process:
        """The command worker's main process (`orderq worker`, running Celery itself)."""
        for process in psutil.Process(self.process.pid).children():
            if "orderq.cli worker" in " ".join(process.cmdline()):
                return process
        raise AssertionError(f"no worker under orderq up:\n{self.output()[-3000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        clean_redis_queue(self.settings.require_broker_url(), self.queue)
        for path in self.data_dir.rglob("*"):
            if path.is_file():
                path.unlink()
        for path in sorted(self.data_dir.rglob("*"), reverse=True):
            path.rmdir()
        self.data_dir.rmdir()


@pytest.fixture
def stacks(migrated_database: str) -> Iterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for stack in started:
        stack.close()


def test_a_crashed_worker_is_restarted_and_commands_flow_again(stacks, engine):
    stack = Stack()
    stacks.append(stack)
    stack.wait_for("orderq is up")
    crashed = stack.worker()

    crashed.kill()  # like the OOM killer, or a crash in C

    stack.wait_for("worker exited with code -9")
    stack.wait_for("worker restarted (pid")
    assert "restarting it in 1 s (restart 1 of at most 5 in 600 s)" in stack.output()
    stack.wait_for(" ready.", timeout=60)
    command = UpsertProduct(key=unique("UP"), sku=unique("SKU"), name="Lamp", price_cents=1)
    with Publisher(stack.settings) as publisher:
        publisher.publish(command)
    status = eventually(
        lambda: lookup(engine, command.key),
        until=lambda found: found.is_terminal,
        what="the command decided by the restarted worker",
        timeout=60,
    )
    assert status.status == "succeeded"
    assert stack.worker().pid != crashed.pid

    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(90) == 0, stack.output()[-3000:]


def test_a_worker_that_keeps_crashing_stops_the_stack_with_one_error(stacks):
    stack = Stack("--max-restarts=1", ORDERQ_FAILPOINTS="receive=bug@CRASH-")
    stacks.append(stack)
    stack.wait_for("orderq is up")
    url = stack.settings.require_broker_url()

    publish(
        url, stack.queue, celery_body(upsert(unique("K"))), headers=task_headers(id=unique("CRASH"))
    )

    assert stack.process.wait(180) == 1, stack.output()[-4000:]
    output = stack.output()
    assert "Unrecoverable error: InjectedBug" in output
    assert "worker exited with code 1 after" in output  # an error status, not 0
    assert "restarting it in 1 s (restart 1 of at most 1 in 600 s)" in output
    assert (
        "error: worker exited with code 1 and was restarted 1 times in 600 s already: giving "
        "up; the others were stopped"
    ) in " ".join(output.split())
