"""The scrape-time sources against the real brokers: queue depth from Redis (priority
sub-queues included) and RabbitMQ, and a source that does not answer."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Exchange, Queue

from orderq.observability.collector import SystemCollector
from orderq.observability.sources import BrokerQueues
from orderq.settings import Settings
from tests.e2e.test_rabbitmq import AMQP_URL, rabbitmq_reachable
from tests.support.environment import TEST_BROKER_URL
from tests.support.workers import PROJECT_ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def queue_name() -> str:
    return f"depth-{uuid.uuid4().hex[:8]}"


def publish(url: str, queue_name: str, count: int, priority: int = 0) -> None:
    queue = Queue(queue_name, Exchange(queue_name, type="direct"), routing_key=queue_name)
    with Connection(url) as connection:
        producer = connection.Producer()
        for number in range(count):
            producer.publish(
                {"n": number},
                exchange=queue.exchange,
                routing_key=queue_name,
                declare=[queue],
                priority=priority,
                serializer="json",
            )


@pytest.fixture
def redis_queue(queue_name) -> Iterator[str]:
    yield queue_name
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.delete(*client.scan_iter(match=f"*{queue_name}*"))  # lists, priorities, bindings
    client.close()


@pytest.fixture
def amqp_queue(queue_name) -> Iterator[str]:
    if not rabbitmq_reachable():
        pytest.skip(f"RabbitMQ is not reachable at {AMQP_URL}")
    yield queue_name
    with Connection(AMQP_URL) as connection:
        channel = connection.channel()
        Queue(queue_name, Exchange(queue_name), channel=channel).delete()
        Exchange(queue_name, channel=channel).delete()
        channel.close()


def test_redis_depth_counts_every_priority_and_a_missing_queue_is_empty(redis_queue):
    publish(TEST_BROKER_URL, redis_queue, 3)
    publish(TEST_BROKER_URL, redis_queue, 2, priority=6)  # kombu: a sub-list of its own
    broker = BrokerQueues(Settings(broker_url=TEST_BROKER_URL), timeout_seconds=2)
    try:
        depths = broker.depths([redis_queue, f"{redis_queue}-never-declared"])
    finally:
        broker.close()

    assert depths == {redis_queue: 5, f"{redis_queue}-never-declared": 0}


def test_rabbitmq_depth_is_the_queue_message_count(amqp_queue):
    publish(AMQP_URL, amqp_queue, 4)
    broker = BrokerQueues(Settings(broker_url=AMQP_URL), timeout_seconds=2)
    try:
        depths = broker.depths([f"{amqp_queue}-never-declared", amqp_queue])
        again = broker.depths([amqp_queue])  # the connection is reused
    finally:
        broker.close()

    assert depths == {f"{amqp_queue}-never-declared": 0, amqp_queue: 4}
    assert again == {amqp_queue: 4}


def test_a_broker_that_does_not_answer_costs_its_gauges_not_the_scrape(engine, settings, caplog):
    away = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    broker = BrokerQueues(away, timeout_seconds=1)
    collector = SystemCollector(away, engine, broker)
    try:
        families = {family.name: family for family in collector.collect()}
        again = {family.name: family for family in collector.collect()}
    finally:
        broker.close()

    up = {s.labels["source"]: s.value for s in families["orderq_metrics_source_up"].samples}
    assert up == {"database": 1, "broker": 0}
    sources = {s.labels["source"] for s in families["orderq_queue_depth"].samples}
    assert sources == {"database"}
    assert "orderq_dead_letters" in families and "orderq_dead_letters" in again
    complaints = [r for r in caplog.records if "the broker did not answer" in r.getMessage()]
    assert len(complaints) == 1  # said once, not at every scrape


def test_serving_on_a_port_in_use_fails_with_one_line(settings):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "orderq.cli", "metrics", "serve", f"--port={port}"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert finished.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in finished.stderr
    assert "Traceback" not in finished.stderr
