"""Publish commands to the workers by task name; upstream code imports only this.

    from producers import Publisher, PlaceOrder, OrderLine
    with Publisher() as publisher:
        publisher.publish(PlaceOrder(key="web-42", customer_ref="c-7",
                                     lines=[OrderLine(sku="MUG", qty=2)]))

Guarantee: `publish` returns only after the broker accepted the message. While the
broker is unreachable it retries (`ORDERQ_PUBLISH_MAX_RETRIES` times, backing off by
`ORDERQ_PUBLISH_RETRY_INTERVAL_SECONDS` more each time, about 5 s in all by default),
then raises `PublishError` — a command is never dropped silently. A broker that hangs
without closing the connection counts as unreachable after
`ORDERQ_BROKER_SOCKET_TIMEOUT_SECONDS`. `PublishError` means "maybe not sent": publish
the same key again — that is always safe, the worker runs each key once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from celery import Celery
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import Engine

from producers.broker import broker_transport_options, publish_retry_policy
from producers.command_log import CommandLog
from producers.commands import Command
from producers.database import build_engine, transaction
from producers.errors import ConfigurationError, PublishError
from producers.settings import ProducerSettings
from producers.wire import check_message

__all__ = ["PublishError", "Publisher", "Receipt"]


@dataclass(frozen=True)
class Receipt:
    """What was sent: the key, Celery's task id for it, and the queue."""

    key: str
    task_id: str
    queue: str


def _one_line(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {' '.join(str(error).split())}"[:500]


class Publisher:
    """Sends commands to the command queue (one publisher per thread).

    With `track=True` (the default) the command is first recorded as `queued` in the
    database, so `orderq status` can tell "queued" from "unknown" and maintenance can
    re-publish it if it never reaches a worker. Pass `track=False` to publish with
    nothing but a broker.

    Raises `ConfigurationError` when the settings lack the broker URL (or, with
    `track=True`, the database URL): read from `CELERY_BROKER_URL` / `DATABASE_URL`.
    """

    def __init__(
        self,
        settings: ProducerSettings | None = None,
        *,
        track: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings or ProducerSettings()
        self.broker_url = self.settings.require_broker_url()
        self.queue = self.settings.command_queue
        self._app = Celery("orderq-publisher", broker=self.broker_url, set_as_current=False)
        self._app.conf.update(
            broker_transport_options=broker_transport_options(self.settings),
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry_on_startup=True,
        )
        try:
            # An explicit connection: Celery lets a CELERY_BROKER_URL environment
            # variable override an app's broker, which would ignore these settings.
            self._connection = self._app.connection_for_write(self.broker_url)
        except Exception as error:  # an unknown scheme or a malformed URL
            self._app.close()
            raise ConfigurationError(
                f"CELERY_BROKER_URL {maybe_sanitize_url(self.broker_url)} cannot be used: "
                f"{_one_line(error)}"
            ) from error
        self._owns_engine = track and engine is None
        self._engine = engine
        if self._owns_engine:
            try:
                self._engine = build_engine(self.settings, pool_size=1, max_overflow=0)
            except ValueError as error:
                self.close()
                raise ConfigurationError(str(error)) from error

    def publish(self, command: Command) -> Receipt:
        """Send one command; raises `PublishError` if it may not have been sent.

        Raises `InvalidCommand` (before anything is recorded or sent) for a command
        over `ORDERQ_MAX_PAYLOAD_BYTES` or holding a NUL character.
        """
        message = command.message()
        check_message(message, self.settings.max_payload_bytes)
        recorded = self._record_queued(command, message) if self._engine is not None else False
        try:
            return self.send(command.task_name, command.key, message)
        except PublishError:
            if recorded:
                self._forget_queued(command.key)
            raise

    def send(self, task_name: str, key: str, message: dict[str, Any]) -> Receipt:
        """Send a raw message to a task (used for replays of stored payloads)."""
        try:
            result = self._app.send_task(
                task_name,
                args=[message],
                queue=self.queue,
                connection=self._connection,
                retry=True,
                retry_policy=publish_retry_policy(self.settings),
            )
        except Exception as error:  # kombu raises several types; all mean "not sent"
            raise PublishError(
                f"could not publish {key} to {maybe_sanitize_url(self.broker_url)} after "
                f"{self.settings.publish_max_retries} retries: {_one_line(error)}"
            ) from error
        return Receipt(key=key, task_id=result.id, queue=self.queue)

    def _record_queued(self, command: Command, message: dict[str, Any]) -> bool:
        """Record the key as `queued`; True if this call created the row."""
        assert self._engine is not None
        try:
            with transaction(self._engine) as connection:
                return CommandLog(connection).record_queued(
                    command.key, command.type, command.fingerprint(), message
                )
        except Exception as error:  # database unreachable, timed out, refused
            raise PublishError(
                f"could not record {command.key} before publishing it (nothing was sent): "
                f"{_one_line(error)}"
            ) from error

    def _forget_queued(self, key: str) -> None:
        assert self._engine is not None
        try:
            with transaction(self._engine) as connection:
                CommandLog(connection).forget_queued(key)
        except Exception:  # the PublishError being raised is what the caller must see
            pass

    def close(self) -> None:
        """Release the broker connection and, if the publisher made it, the engine."""
        if getattr(self, "_connection", None) is not None:
            self._connection.release()
        self._app.close()
        if self._owns_engine and self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
