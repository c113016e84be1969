"""Publishing a wave of deliveries concurrently and reading back, from the database,
how far the workers got with them.

A *delivery* is one message on the queue; a command published three times is one
command and three deliveries. Progress is never counted by this script: the worker
counts every delivery it takes in `command_deliveries.deliveries` (in its own committed
statement), and stores each key's outcome in `command_ledger`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from orderq.settings import Settings
from producers.command_log import CommandLog
from producers.commands import Command
from producers.database import autocommit
from producers.publisher import Publisher


@dataclass(frozen=True)
class Delivery:
    """One message to send: a command, or a raw message (for invalid input)."""

    key: str
    task_name: str
    message: dict[str, Any]
    command: Command | None = None

    @classmethod
    def of(cls, command: Command) -> Delivery:
        return cls(command.key, command.task_name, command.message(), command)

    @classmethod
    def raw(cls, task_name: str, message: dict[str, Any]) -> Delivery:
        """A message sent as is, bypassing validation (as a buggy producer would)."""
        return cls(str(message.get("key")), task_name, message)

    @property
    def counted(self) -> bool:
        """Does the worker count this delivery as an attempt? (Not when it cannot even
        parse it: an invalid command is rejected without an attempt.)"""
        return self.command is not None


@dataclass(frozen=True)
class Wave:
    """Deliveries published together; `build` reads the database for what it needs
    (e.g. the order numbers the previous wave created)."""

    title: str
    build: Callable[[Connection], Sequence[Delivery]]


class Broadcaster:
    """Publishes deliveries from several threads at once (one publisher per thread)."""

    def __init__(self, settings: Settings, engine: Engine, threads: int = 8) -> None:
        self.settings = settings
        self.engine = engine
        self.threads = threads
        self._local = threading.local()
        self._publishers: list[Publisher] = []
        self._lock = threading.Lock()

    def _publisher(self) -> Publisher:
        publisher = getattr(self._local, "publisher", None)
        if publisher is None:
            publisher = Publisher(self.settings, engine=self.engine)
            self._local.publisher = publisher
            with self._lock:
                self._publishers.append(publisher)
        return publisher

    def _send(self, delivery: Delivery) -> None:
        publisher = self._publisher()
        if delivery.command is not None:
            publisher.publish(delivery.command)
        else:
            publisher.send(delivery.task_name, delivery.key, delivery.message)

    def send_all(self, deliveries: Sequence[Delivery], sent: Callable[[], None]) -> None:
        def one(delivery: Delivery) -> None:
            self._send(delivery)
            sent()

        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(one, deliveries))

    def close(self) -> None:
        for publisher in self._publishers:
            publisher.close()


class Progress:
    """How many of a wave's deliveries the workers have taken, read from the database."""

    def __init__(self, engine: Engine, deliveries: Sequence[Delivery]) -> None:
        self.engine = engine
        self.copies = Counter(d.key for d in deliveries if d.counted)
        self.uncounted = Counter(d.key for d in deliveries if not d.counted)
        self.keys = sorted(set(self.copies) | set(self.uncounted))
        self.total = len(deliveries)
        self.before = self._attempts()

    def _attempts(self) -> dict[str, int]:
        with autocommit(self.engine) as connection:
            return CommandLog(connection).delivery_counts(list(self.copies))

    def done(self) -> tuple[int, bool]:
        """(deliveries processed so far, whether every key also has its outcome)."""
        now = self._attempts()
        with autocommit(self.engine) as connection:
            decided = set(CommandLog(connection).decided_entries(self.keys))
        processed = sum(
            min(now.get(key, 0) - self.before.get(key, 0), copies)
            for key, copies in self.copies.items()
        ) + sum(copies for key, copies in self.uncounted.items() if key in decided)
        return processed, processed >= self.total and decided >= set(self.keys)

    def wait(self, timeout: float, tick: Callable[[int], None]) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            processed, finished = self.done()
            tick(processed)
            if finished:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.15)
