"""Celery's message consumer, except that no message disappears without a word.

Celery logs and discards a message whose task name it does not know. orderq wants an
answer instead: the message is forwarded to the `orderq.unknown_task` task, which
stores `rejected: invalid_command` under the message's key (when it has a usable one)
through the normal runner — with the same retries if the database is busy. Only then
is the original acknowledged.

A body that is not valid JSON cannot name a key that could be trusted, so it stays a
logged drop (Celery acknowledges it so it cannot loop); the log line says so.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer

log = logging.getLogger(__name__)

UNKNOWN_TASK = "orderq.unknown_task"


class CommandConsumer(Consumer):  # type: ignore[misc]
    """Selected with the `worker_consumer` setting."""

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        try:
            name = message.headers.get("task") if message.headers else None
            payload = message.payload
            if isinstance(payload, dict):  # message protocol 1
                name = name or payload.get("task")
                args, kwargs = payload.get("args"), payload.get("kwargs")
            else:
                args, kwargs = payload[0], payload[1]
            self.app.send_task(UNKNOWN_TASK, args=[name, args, kwargs], retry=True)
        except Exception:
            log.exception("could not forward a message for an unknown task; Celery drops it")
            super().on_unknown_task(body, message, exc)
            return
        log.warning(
            "message for unknown task %r forwarded to %s (its key gets rejected: invalid_command)",
            name,
            UNKNOWN_TASK,
        )
        message.ack_log_error(log, self.connection_errors)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        headers = message.headers or {}
        log.error(
            "DROPPED message %s for task %r: its body is not valid %s (%s). No idempotency "
            "key can be read from it, so no outcome is stored; the publisher must fix it "
            "and publish again.",
            headers.get("id"),
            headers.get("task"),
            message.content_type,
            exc,
        )
        super().on_decode_error(message, exc)
