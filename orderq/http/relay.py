"""The relay: accepted commands to the broker, after their commit, never lost.

The intake commits a command with `published_at` NULL and hands it to this relay (an
in-memory queue, drained by one thread per API process). The thread publishes it and
marks it published. Whatever it could not publish stays NULL in the database:

- broker down: the send fails, the command waits in PostgreSQL;
- the process killed between commit and publish: the command was never in any other
  memory;
- the in-memory queue full (a broker slower than intake): dropped from memory only.

Every `ORDERQ_HTTP_RELAY_SWEEP_SECONDS` each relay claims such commands older than
`ORDERQ_HTTP_RELAY_GRACE_SECONDS` from the database (`FOR UPDATE SKIP LOCKED`: API
processes never send the same one twice at once) and publishes them; the maintenance
re-publisher does the same when no API process runs at all. A command published twice
(the process died after sending, before marking) is harmless: the ledger runs each
key once.

Every path publishes inside the trace context the accepting request stored with the
command (when it was traced), so one trace runs from the HTTP request through the
publish, the broker and the worker's task to the command's transaction.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from producers.command_log import CommandLog
from producers.commands import COMMANDS_BY_TYPE
from producers.database import autocommit
from producers.errors import PublishError
from producers.publisher import Publisher
from producers.settings import ProducerSettings
from worker.adapters import tracing
from worker.adapters.stuck_commands import UnpublishedCommand, publish_unpublished_batch

log = logging.getLogger("orderq.http.relay")

SWEEP_BATCH = 500
MEMORY_BATCH = 500


@dataclass(frozen=True)
class Accepted:
    """A committed command waiting to be published."""

    key: str
    task_name: str
    message: dict[str, Any]
    #: the trace context of the request that accepted it (None: not traced)
    trace_context: dict[str, str] | None = None


class Relay:
    """Publishes accepted commands from a background thread (start/stop with the app)."""

    def __init__(
        self,
        settings: ProducerSettings,
        engine: Engine,
        *,
        sweep_seconds: float,
        grace_seconds: float,
        queue_size: int,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sweep_seconds = sweep_seconds
        self.grace_seconds = grace_seconds
        self._queue: queue.Queue[Accepted] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publisher: Publisher | None = None
        #: the last publishing failure, None while the broker takes messages
        self.broker_error: str | None = None

    # -- the app's side -------------------------------------------------------------------

    def submit(self, accepted: Accepted) -> None:
        """Publish `accepted` soon (it is committed: if this process cannot, another
        relay or maintenance will)."""
        try:
            self._queue.put_nowait(accepted)
        except queue.Full:
            log.warning("relay queue full: %s waits for the next sweep", accepted.key)

    def start(self) -> None:
        self._publisher = Publisher(self.settings, track=False)
        self._thread = threading.Thread(target=self._run, name="orderq-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Publish what is queued in memory (if the broker lets it), then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._publisher is not None:
            self._publisher.close()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        next_sweep = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            batch = self._drain(timeout=0 if stopping else max(next_sweep - time.monotonic(), 0))
            if batch:
                self._publish(batch)
            if stopping and self._queue.empty():
                return
            if time.monotonic() >= next_sweep and not stopping:
                self._sweep()
                next_sweep = time.monotonic() + self.sweep_seconds

    def _drain(self, timeout: float) -> list[Accepted]:
        try:
            batch = [
                self._queue.get(timeout=min(timeout, 0.2)) if timeout else self._queue.get_nowait()
            ]
        except queue.Empty:
            return []
        while len(batch) < MEMORY_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _send(
        self,
        key: str,
        task_name: str,
        message: dict[str, Any],
        trace_context: dict[str, str] | None,
    ) -> None:
        """Publish inside the accepting request's trace: the publish span and the
        worker's task continue it, though this thread runs outside the request."""
        assert self._publisher is not None
        with tracing.continued(trace_context):
            self._publisher.send(task_name, key, message)

    def _publish(self, batch: list[Accepted]) -> None:
        sent: list[str] = []
        for accepted in batch:
            try:
                self._send(
                    accepted.key, accepted.task_name, accepted.message, accepted.trace_context
                )
            except PublishError as error:
                self._broker_failed(error, len(batch) - len(sent))
                break
            sent.append(accepted.key)
        else:
            self.broker_error = None
        if sent:
            try:
                with autocommit(self.engine) as connection:
                    CommandLog(connection).mark_published(sent)
            except Exception as error:  # they will be sent again: harmless, the ledger dedups
                log.warning("could not mark %d commands published: %s", len(sent), error)

    def _sweep(self) -> None:
        def send(command: UnpublishedCommand) -> None:
            task_name = COMMANDS_BY_TYPE[command.command_type].task_name
            self._send(command.key, task_name, command.payload, command.trace_context)

        while not self._stop.is_set():
            try:
                sent, error = publish_unpublished_batch(
                    self.engine, self.grace_seconds, SWEEP_BATCH, send
                )
            except Exception as failure:  # the database is unreachable: next sweep
                log.warning("relay sweep failed: %s", failure)
                return
            if sent:
                log.info("relay published %d accepted commands left unpublished", sent)
            if error is not None:
                self._broker_failed(error, None)
                return
            self.broker_error = None
            if sent < SWEEP_BATCH:
                return

    def _broker_failed(self, error: Exception, waiting: int | None) -> None:
        self.broker_error = str(error)
        what = f"{waiting} accepted commands wait" if waiting else "accepted commands wait"
        log.warning("relay cannot publish (%s); %s in the database", error, what)
