"""Figures read when Prometheus scrapes: what waits in the database and in the broker.

Each is one cheap query (indexed, bounded) on a short statement timeout; none is kept
up to date in the command path, so no command pays for monitoring with an extra write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from kombu import Connection
from sqlalchemy import Engine

from producers.broker import broker_transport_options
from producers.command_log import Backlog, CommandLog
from producers.database import autocommit
from producers.settings import ProducerSettings
from worker.adapters.quarantine import QuarantineLog

#: quarantined messages are counted up to this many rows: the alert only asks "is it
#: empty?", and a flood of bad
#: messages must not make every scrape read the whole table
QUARANTINE_COUNT_CAP = 100_000


@dataclass(frozen=True)
class DatabaseFigures:
    backlog: Backlog
    #: None while the quarantine table does not exist
    quarantined: int | None


def database_figures(engine: Engine) -> DatabaseFigures:
    """The command backlog and the quarantine, on one pooled connection."""
    with autocommit(engine) as connection:
        return DatabaseFigures(CommandLog(connection).backlog(), quarantined_messages(connection))


def quarantined_messages(connection: psycopg.Connection[Any]) -> int:
    """Messages waiting in quarantine for an operator (capped)."""
    return QuarantineLog(connection).waiting(QUARANTINE_COUNT_CAP)


class BrokerQueues:
    """Messages ready in the broker's queues (not counting the ones workers hold).

    A passive queue declare answers both transports: RabbitMQ's own message count, and
    for Redis kombu's LLEN over the queue's list and its priority sub-lists. A queue
    that does not exist (an empty Redis list is no key at all) holds 0.
    """

    def __init__(self, settings: ProducerSettings, timeout_seconds: float) -> None:
        self._url = settings.require_broker_url()
        self._timeout = timeout_seconds
        self._options = {
            **broker_transport_options(settings),
            "socket_timeout": timeout_seconds,
            "socket_connect_timeout": timeout_seconds,
        }
        self._connection: Connection | None = None

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Ready messages per queue; raises the transport's error if the broker is away
        (the next call connects afresh)."""
        if self._connection is None:
            self._connection = Connection(
                self._url, connect_timeout=self._timeout, transport_options=self._options
            )
        connection = self._connection
        try:
            connection.ensure_connection(max_retries=1, timeout=self._timeout)
            return self._declare(connection, queues)
        except Exception:
            self.close()
            raise

    @staticmethod
    def _declare(connection: Connection, queues: Iterable[str]) -> dict[str, int]:
        depths = {}
        channel = connection.channel()
        try:
            for queue in queues:
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True)[1]
                except connection.channel_errors as error:
                    if not _not_found(error):
                        raise
                    depths[queue] = 0
                    channel.close()  # RabbitMQ closes a channel after a failed declare
                    channel = connection.channel()
        finally:
            channel.close()
        return depths

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.release()


def _not_found(error: Exception) -> bool:
    """The passive declare's "no such queue" (RabbitMQ's 404; kombu's Redis says the
    same), as opposed to any other channel error."""
    return getattr(error, "code", None) == 404 or "NOT_FOUND" in str(error)
