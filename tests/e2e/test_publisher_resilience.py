"""Publishing while the broker is briefly away: retries, then fails loudly. Never a
silent drop, never a hang. Uses a private redis-server it can stop, start and freeze."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from producers.outcomes import lookup
from producers.publisher import Publisher, PublishError
from tests.support.commands import order_for
from tests.support.ids import unique
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def publisher(broker, settings, migrated_database) -> Iterator[Publisher]:
    private = settings.model_copy(
        update={
            "broker_url": broker.url,
            "command_queue": f"publish-{uuid.uuid4().hex[:8]}",
            "publish_max_retries": 4,
            "publish_retry_interval_seconds": 0.2,
            "broker_socket_timeout_seconds": 1.0,
        }
    )
    with Publisher(private) as publisher:
        yield publisher


def queued(broker: PrivateRedis, queue: str) -> int:
    return redis.Redis.from_url(broker.url).llen(queue)


def test_broker_down_raises_publish_error_and_records_nothing(broker, publisher, engine):
    publisher.publish(order_for("MUG-1"))  # connected once, then the broker goes away
    broker.stop()
    command = order_for("MUG-1", key=unique("PUB"))

    with pytest.raises(PublishError, match=rf"could not publish {command.key} .* after 4 retries"):
        publisher.publish(command)

    assert lookup(engine, command.key).status == "unknown"


def test_broker_back_within_the_retry_window_gets_the_message(broker, publisher, engine):
    broker.stop()
    command = order_for("MUG-1", key=unique("PUB"))
    threading.Timer(0.3, broker.start).start()

    receipt = publisher.publish(command)

    assert receipt.key == command.key
    assert queued(broker, publisher.queue) == 1
    assert lookup(engine, command.key).status == "queued"


def test_a_frozen_broker_fails_the_publish_instead_of_hanging(broker, publisher):
    publisher.publish(order_for("MUG-1"))
    os.kill(broker.process.pid, signal.SIGSTOP)  # accepts TCP, answers nothing
    try:
        with pytest.raises(PublishError, match="Timeout"):
            publisher.publish(order_for("MUG-1", key=unique("PUB")))
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
