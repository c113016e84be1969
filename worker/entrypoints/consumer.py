"""Celery's message consumer with orderq's guard in front of it.

Celery turns a message into a request straight from its headers and body; a message
that is not what Celery expects raises inside the worker's event loop and kills the
worker, wedges it, or makes it kill a pool process on every delivery (see
docs/reliability.md). Here every task message first goes through
`worker.adapters.envelope.classify_envelope`:

- accepted: Celery gets the guard's checked headers and decoded body
  (`TaskMessage`), for the task the message names;
- quarantined: the message is re-addressed, in this process, to the `orderq.quarantine`
  task, which stores it in PostgreSQL and answers the key it carries; the original is
  acknowledged when that task is done (late ack, like every command).

Celery's own error paths (decode errors, unknown tasks, invalid tasks) end in the
quarantine too; below Celery, the transport guards (worker/adapters/transport_guard.py)
turn what kombu or py-amqp cannot read into messages this guard quarantines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer
from vine import promise

from worker.adapters.envelope import (
    Accepted,
    EnvelopeRules,
    Problem,
    Quarantined,
    RawMessage,
    arguments_in_body,
    carried_command,
    classify_envelope,
)
from worker.adapters.quarantine import QuarantineRecord
from worker.adapters.task_message import TaskMessage, accepted_message, quarantine_message
from worker.service.failpoints import Failpoints
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

UNKNOWN_TASK = "orderq.unknown_task"
QUARANTINE_TASK = "orderq.quarantine"

Deliver = Callable[[Any], Any]


class MessageGuard:
    """The guard between a consumer's queue and Celery's task handler (`deliver`)."""

    def __init__(
        self,
        settings: WorkerSettings,
        task_names: list[str],
        deliver: Deliver,
        broker: str,
        queue_of: Callable[[Any], str],
    ) -> None:
        self.rules = EnvelopeRules.from_settings(settings, task_names)
        self.deliver = deliver
        self.broker = broker
        self.queue_of = queue_of
        self.body_limit = settings.quarantine_body_bytes
        self.failpoints = Failpoints(settings.failpoints, settings.failpoint_dir)

    def receive(self, message: Any) -> Any:
        """Hand `message` to Celery as the task it names, or to the quarantine."""
        raw = RawMessage.of(message)
        if raw.headers and isinstance(raw.headers, dict) and isinstance(raw.headers.get("id"), str):
            # tests only (failpoint `receive`, matched on the task id): a bug below the
            # guard, to prove the worker then exits with an error status
            self.failpoints.hit("receive", raw.headers["id"], 1)
        verdict = classify_envelope(raw, self.rules)
        if isinstance(verdict, Accepted):
            try:
                return self.deliver(accepted_message(message, verdict))
            except Exception as error:  # a gap in the guard: Celery refused it after all
                log.exception("Celery refused a message the guard accepted")
                verdict = refused(verdict, error)
        return self.quarantine(message, verdict, raw)

    def quarantine(self, message: Any, verdict: Quarantined, raw: RawMessage | None = None) -> Any:
        """Re-address `message` to the quarantine task (it acknowledges the original)."""
        original = message.original if isinstance(message, TaskMessage) else message
        try:
            record = QuarantineRecord.capture(
                raw or RawMessage.of(original),
                verdict,
                self.broker,
                self.queue_of(original),
                self.body_limit,
            )
            return self.deliver(quarantine_message(original, record, QUARANTINE_TASK))
        except Exception:
            # Only a bug gets here. Acknowledging loses this one message (logged with its
            # reason); leaving it would redeliver it into the same bug for ever.
            log.critical(
                "DROPPED a message that could not be quarantined (%s: %s)",
                verdict.problem,
                verdict.reason,
                exc_info=True,
            )
            _acknowledge(original)


def refused(accepted: Accepted, error: Exception) -> Quarantined:
    """The quarantine verdict for a message Celery refused although the guard let it in."""
    command = carried_command(accepted.args, accepted.kwargs)
    return Quarantined(
        Problem.REFUSED,
        f"Celery refused the message: {type(error).__name__}: {error}",
        key=command.get("key") if command is not None else None,
        command=command,
        task=accepted.task,
        task_id=accepted.headers.get("id"),
    )


def _acknowledge(message: Any) -> None:
    try:
        if not message.acknowledged:
            message.ack()
    except Exception:
        log.exception("could not acknowledge a message that could not be quarantined")


class CommandConsumer(Consumer):  # type: ignore[misc]
    """Selected with the `worker_consumer` setting."""

    guard: MessageGuard | None = None

    def create_task_handler(self, promise: Any = promise) -> Deliver:
        deliver = super().create_task_handler(promise)
        self.guard = MessageGuard(
            self.app.settings,
            list(self.app.tasks.keys()),
            deliver,
            broker=_broker_name(self.connection),
            queue_of=self._queue_of,
        )
        return self.guard.receive

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Celery closes the lost connection here. Kombu's Redis channel then puts its
        unacknowledged messages back on the queue — a batch's worth with batching — and
        that can fail with an AttributeError on the half-closed client, which Celery
        would take for an unrecoverable error and stop the worker. The messages are
        safe either way: still in the unacked set, restored after the visibility
        timeout (by this worker once it reconnects, or any other)."""
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError:
            log.warning(
                "the lost connection could not return its unacknowledged messages now; "
                "they come back after the visibility timeout",
                exc_info=True,
            )
            self.connection = None

    def _queue_of(self, message: Any) -> str:
        info = getattr(message, "delivery_info", None)
        info = info if isinstance(info, dict) else {}
        tags = getattr(self.task_consumer, "_active_tags", None) or {}
        by_tag = {tag: queue for queue, tag in tags.items()}
        queue = by_tag.get(info.get("consumer_tag")) or info.get("routing_key")
        return queue if isinstance(queue, str) and queue else "(unknown queue)"

    def _is_task_message(self, message: Any) -> bool:
        task_consumer = getattr(self, "task_consumer", None)
        channel = getattr(message, "channel", None)
        return (
            self.guard is not None
            and task_consumer is not None
            and (channel is task_consumer.channel)
        )

    # Celery's own error paths: unreachable for what the guard checks, kept as a net.

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        if not self._is_task_message(message):  # e.g. a remote-control message
            return super().on_decode_error(message, exc)
        self._refuse(message, Problem.UNREADABLE, f"kombu could not read the message: {exc}")

    def on_unknown_message(self, body: Any, message: Any) -> None:
        if self.guard is None:
            return super().on_unknown_message(body, message)
        self._refuse(message, Problem.HEADER, "headers: not a Celery task message")

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        if self.guard is None:
            return super().on_unknown_task(body, message, exc)
        headers = getattr(message, "headers", None)
        name = headers.get("task") if isinstance(headers, dict) else None
        self._refuse(message, Problem.TASK, f"task: this worker has no task {name!r}")

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        if self.guard is None:
            return super().on_invalid_task(body, message, exc)
        self._refuse(message, Problem.REFUSED, f"Celery refused the message: {exc}")

    def _refuse(self, message: Any, problem: Problem, reason: str) -> None:
        assert self.guard is not None
        try:
            if isinstance(message, TaskMessage):
                args, kwargs, _ = message.payload
            else:
                args, kwargs = arguments_in_body(getattr(message, "body", None), self.guard.rules)
            command = carried_command(args, kwargs)
        except Exception:
            command = None
        headers = getattr(message, "headers", None)
        headers = headers if isinstance(headers, dict) else {}
        verdict = Quarantined(
            problem,
            reason,
            key=command.get("key") if command is not None else None,
            command=command,
            task=headers.get("task") if isinstance(headers.get("task"), str) else None,
            task_id=headers.get("id") if isinstance(headers.get("id"), str) else None,
        )
        self.guard.quarantine(message, verdict)


def _broker_name(connection: Any) -> str:
    try:
        return str(connection.transport.driver_type)
    except Exception:
        return "unknown"
