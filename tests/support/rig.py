"""A private stage for one fault test: its own queue, its own worker processes (with the
environment the fault needs), a publisher, and — optionally — a private broker.

Fault tests never share a queue with the session's worker: a worker with failpoints
or short timeouts must only ever see the commands of the test that started it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
import uuid

import redis

from orderq.settings import Settings
from producers.publisher import Publisher
from tests.support.environment import TEST_BROKER_URL
from tests.support.workers import WorkerProcess

#: For tests that SIGKILL a whole worker or restart the broker: unacknowledged messages
#: come back after this many seconds, so the time limits must stay below it.
SHORT_VISIBILITY = {
    "ORDERQ_REDIS_VISIBILITY_TIMEOUT_SECONDS": "6",
    "ORDERQ_REDIS_UNACKED_RESTORE_INTERVAL_SECONDS": "1",
    "ORDERQ_TASK_TIME_LIMIT_SECONDS": "4",
    "ORDERQ_TASK_SOFT_TIME_LIMIT_SECONDS": "3",
}


class FaultRig:
    """Queue, workers and publisher of one fault test; `close()` cleans all of it up."""

    def __init__(self, broker_url: str | None = None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.queue = f"faults-{tag}.commands"
        self.application_name = f"orderq-faults-{tag}"
        self.broker_url = broker_url or TEST_BROKER_URL
        self.env = {
            "ORDERQ_COMMAND_QUEUE": self.queue,
            "ORDERQ_APPLICATION_NAME": self.application_name,
            "CELERY_BROKER_URL": self.broker_url,
        }
        self.settings = Settings(command_queue=self.queue, broker_url=self.broker_url)
        self.workers: list[WorkerProcess] = []
        self._publishers: list[Publisher] = []

    def worker(self, concurrency: int = 2, name: str = "fault", **env: str) -> WorkerProcess:
        """Start a real worker on this rig's queue, with extra environment."""
        process = WorkerProcess(concurrency, env={**self.env, **env}, name=name)
        self.workers.append(process)
        process.start()
        return process

    def publisher(self, **overrides: object) -> Publisher:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        publisher = Publisher(settings)
        self._publishers.append(publisher)
        return publisher

    def close(self) -> None:
        for process in self.workers:
            process.stop(timeout=10)
        for publisher in self._publishers:
            publisher.close()
        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(self.broker_url, socket_timeout=2)
            # the queue's lists and kombu's binding keys for it
            keys = list(client.scan_iter(match=f"*{self.queue}*"))
            if keys:
                client.delete(*keys)
            client.close()


def wait_for_failpoint(worker: WorkerProcess, key: str, timeout: float = 30.0) -> int:
    """The pid of the pool process that reached a failpoint for `key` (or a key starting
    with it), read from the worker's log."""
    pattern = re.compile(rf"failpoint \S+ fired for {re.escape(key)}\S* in pid (\d+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(worker.log_text())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(
        f"no failpoint fired for {key} in {timeout}s:\n{worker.log_text()[-3000:]}"
    )


def sigkill(pid: int) -> None:
    """Kill one process the way the OOM killer does."""
    os.kill(pid, signal.SIGKILL)
