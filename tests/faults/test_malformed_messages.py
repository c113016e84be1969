"""No message can stop a worker: every kind of malformed message, pushed straight onto
the real broker (Redis and RabbitMQ) by raw kombu or redis calls, one at a time, to a
real worker with one pool process.

For each case: the worker's main process is the same one and still running; a normal
command published afterwards is decided within seconds; the message is in the
quarantine (with its problem and a reason naming it) and the key it carries is
answered — or, for the shapes and options clients legitimately send, the key has its
outcome; and the message was delivered once (quarantine row / delivery log, not logs).

Before the guard, these killed the worker (most Redis envelope faults, task names that
are lists, ...), wedged it (a missing `id`: redelivered forever on Redis, a stuck warm
shutdown on RabbitMQ), killed a pool process on every delivery (a 1 ms time limit),
looped (Celery's own tasks) or left the key `unknown` (expires, half an emoji).
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from unittest import mock

import pytest
from sqlalchemy import Engine

from producers.commands import UpsertProduct
from producers.outcomes import lookup
from producers.publisher import Publisher
from tests.e2e.test_rabbitmq import AMQP_URL, rabbitmq_reachable
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.raw_messages import (
    PLACE_ORDER,
    UPSERT_PRODUCT,
    celery_body,
    clean_redis_queue,
    delete_amqp_queue,
    delivery_count,
    in_seconds,
    publish,
    push_redis,
    quarantined,
    redis_item,
    task_headers,
    upsert,
)
from tests.support.rig import FaultRig
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.faults

DECIDED_WITHIN = 15.0  # seconds for the normal command published after each case


@dataclass
class Stage:
    """One broker with one worker (one pool process) on a private queue."""

    broker: str
    url: str
    queue: str
    worker: WorkerProcess
    publisher: Publisher
    main_pid: int = 0

    def __post_init__(self) -> None:
        self.main_pid = self.worker.pid


@dataclass(frozen=True)
class Quarantine:
    """The message is quarantined with `problem`, its reason says `says`; `answers` is
    the rejection its key gets (None: it carries no usable key)."""

    problem: str
    says: str
    answers: str | None = "invalid_command"


@dataclass(frozen=True)
class Outcome:
    """The message runs as a command: its key ends `status` (with `reason`, `says`)."""

    status: str
    reason: str | None = None
    says: str = ""


Send = Callable[[Stage, str], None]


@dataclass(frozen=True)
class Case:
    name: str
    send: Send
    expect: Quarantine | Outcome
    brokers: frozenset[str] = field(default=frozenset({"redis", "amqp"}))


def kombu(
    body: Callable[[str], bytes | str],
    headers: Callable[[str], dict] = lambda key: task_headers(),
    **options,
) -> Send:
    def send(stage: Stage, key: str) -> None:
        publish(stage.url, stage.queue, body(key), headers=headers(key), **options)

    return send


def redis_raw(item: Callable[[Stage, str], object]) -> Send:
    def send(stage: Stage, key: str) -> None:
        push_redis(stage.url, stage.queue, item(stage, key))

    return send


def command(key: str) -> bytes:
    return celery_body(upsert(key))


def item(key: str, stage: Stage, **changes) -> dict:
    """A well-formed Redis envelope of an upsert for `key`, then changed."""
    envelope = redis_item(command(key), task_headers(), queue=stage.queue)
    properties = changes.pop("properties", {})
    envelope["properties"].update(properties)
    envelope.update(changes)
    return envelope


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def far_future(send: Send) -> Send:
    """`send`, with every datetime py-amqp encodes written as a timestamp past year 9999
    (what a client in another language can send; Python's datetime cannot hold it)."""

    def sending(stage: Stage, key: str) -> None:
        with mock.patch("amqp.serialization.calendar.timegm", return_value=2**62):
            send(stage, key)

    return sending


CASES = [
    # -- the Redis envelope itself (kombu's virtual transport) -----------------------------
    Case(
        "envelope: not JSON",
        redis_raw(lambda stage, key: f"not json at all {key}".encode()),
        Quarantine("unreadable", "not JSON", answers=None),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: a JSON array",
        redis_raw(lambda stage, key: [key]),
        Quarantine("unreadable", "an array in JSON", answers=None),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: properties not an object",
        redis_raw(lambda stage, key: item(key, stage) | {"properties": [key]}),
        Quarantine("unreadable", "properties: an array"),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: a body encoding kombu has no codec for",
        redis_raw(lambda stage, key: item(key, stage, properties={"body_encoding": "rot13"})),
        Quarantine("unreadable", "body_encoding"),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: a body that is not base64",
        redis_raw(lambda stage, key: item(key, stage, body=f"!{key}")),
        Quarantine("unreadable", "not base64", answers=None),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: a body that is a number",
        redis_raw(lambda stage, key: item(key, stage, body=5, marker=key)),
        Quarantine("unreadable", "body: a number", answers=None),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: headers that are a list",
        redis_raw(lambda stage, key: item(key, stage, headers=[key])),
        Quarantine("unreadable", "headers: an array"),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: a compression header",
        redis_raw(lambda stage, key: item(key, stage, headers=task_headers(compression="zlib"))),
        Quarantine("unreadable", "compress"),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: headers null (no task header)",
        redis_raw(lambda stage, key: item(key, stage, headers=None)),
        Quarantine("header", "headers.task: missing"),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: a text body (no base64) with half an emoji, escaped",
        redis_raw(
            lambda stage, key: item(
                key,
                stage,
                properties={"body_encoding": None},
                body=json.dumps([[upsert(key, name="cut \ud83d")], {}, {}]),
            )
        ),
        Quarantine("text", "half of a surrogate pair"),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: a text body (no base64) with half an emoji, raw",
        redis_raw(
            lambda stage, key: item(
                key,
                stage,
                properties={"body_encoding": None},
                body=json.dumps([[upsert(key, name="cut \ud83d")], {}, {}], ensure_ascii=False),
            )
        ),
        Quarantine("unreadable", "surrogates not allowed"),
        frozenset({"redis"}),
    ),
    Case(
        "envelope: forged bookkeeping (tag, delivery_info, priority) is repaired",
        redis_raw(
            lambda stage, key: item(
                key,
                stage,
                properties={
                    "delivery_tag": [1],
                    "delivery_info": {"exchange": "no-such-exchange"},
                    "priority": float("inf"),
                },
            )
        ),
        Outcome("succeeded"),
        frozenset({"redis"}),
    ),
    # -- protocol headers ------------------------------------------------------------------
    Case(
        "missing id",
        kombu(command, lambda key: task_headers(id=...)),
        Quarantine("header", "headers.id: missing"),
    ),
    Case(
        "id a number",
        kombu(command, lambda key: task_headers(id=42)),
        Quarantine("header", "headers.id: 42"),
    ),
    Case(
        "task a list",
        kombu(command, lambda key: task_headers(task=[UPSERT_PRODUCT])),
        Quarantine("header", "headers.task"),
    ),
    Case(
        "task a number",
        kombu(command, lambda key: task_headers(task=7)),
        Quarantine("header", "headers.task: 7"),
    ),
    Case(
        "Celery's chord_unlock (retried every second for ever before)",
        kombu(command, lambda key: task_headers(task="celery.chord_unlock")),
        Quarantine("task", "one of Celery's own tasks"),
    ),
    Case(
        "Celery's backend_cleanup",
        kombu(
            lambda key: celery_body(),
            lambda key: task_headers(task="celery.backend_cleanup", id=key),
        ),
        Quarantine("task", "one of Celery's own tasks", answers=None),
    ),
    Case(
        "a task name no command uses",
        kombu(command, lambda key: task_headers(task="orderq.orders.upsert_product_v2")),
        Quarantine("task", "no command is sent to task 'orderq.orders.upsert_product_v2'"),
    ),
    Case(
        "retries not a number",
        kombu(command, lambda key: task_headers(retries="many")),
        Quarantine("header", "headers.retries"),
    ),
    Case(
        "retries beyond any bound",
        kombu(command, lambda key: task_headers(retries=10**15)),
        Quarantine("header", "headers.retries"),
    ),
    Case(
        "timelimit not a pair",
        kombu(command, lambda key: task_headers(timelimit="abc")),
        Quarantine("time_limit", "headers.timelimit"),
    ),
    Case(
        "timelimit of a millisecond (killed a pool process on every delivery before)",
        kombu(command, lambda key: task_headers(timelimit=[0.001, None])),
        Quarantine("time_limit", "below the"),
    ),
    Case(
        "timelimit above the worker's",
        kombu(command, lambda key: task_headers(timelimit=[10**6, None])),
        Quarantine("time_limit", "exceeds this worker's"),
    ),
    Case(
        "eta not a time",
        kombu(command, lambda key: task_headers(eta="next tuesday")),
        Quarantine("header", "headers.eta"),
    ),
    Case(
        "eta a day away",
        kombu(command, lambda key: task_headers(eta=in_seconds(86_400))),
        Quarantine("schedule", "a message may wait at most"),
    ),
    Case(
        "expired before a worker received it",
        kombu(command, lambda key: task_headers(expires="2001-01-01T00:00:00+00:00")),
        Quarantine("expired", "expired at 2001-01-01", answers="expired"),
    ),
    # -- content type, encoding, JSON ---------------------------------------------------
    Case(
        "content type text/plain",
        kombu(command, content_type="text/plain"),
        Quarantine("content_type", "'text/plain'"),
    ),
    Case(
        "a pickle",
        kombu(
            lambda key: pickle.dumps([[key], {}, {}]), content_type="application/x-python-serialize"
        ),
        Quarantine("content_type", "x-python-serialize", answers=None),
    ),
    Case(
        "no content type",
        kombu(command, content_type=None, content_encoding=None),
        Quarantine("content_type", "application/json only"),
    ),
    Case(
        "encoding latin-1",
        kombu(command, content_encoding="latin-1"),
        Quarantine("encoding", "latin-1"),
    ),
    Case(
        "bytes that are not UTF-8",
        kombu(lambda key: b"\xff\xfe" + command(key)),
        Quarantine("encoding", "not UTF-8", answers=None),
    ),
    Case(
        "bytes that are not JSON",
        kombu(lambda key: f'{{"key": "{key}", "type": "upsert'.encode()),
        Quarantine("json", "not valid JSON", answers=None),
    ),
    Case(
        "NaN in the body",
        kombu(lambda key: command(key).replace(b'"price_cents": 100', b'"price_cents": NaN')),
        Quarantine("json", "NaN"),
    ),
    Case(
        "a kombu-typed value",
        kombu(
            lambda key: celery_body(
                upsert(key, price_cents={"__type__": "decimal", "__value__": "1"})
            )
        ),
        Quarantine("json", "kombu-typed value"),
    ),
    Case(
        "JSON nested 200 levels deep",
        kombu(lambda key: celery_body(upsert(key), nested(200))),
        Quarantine("too_deep", "nested more than"),
    ),
    Case(
        "a body over the size the worker reads",
        kombu(lambda key: celery_body(upsert(key, name="x" * (2 << 20)))),
        Quarantine("too_large", "the worker reads at most", answers=None),
    ),
    Case(
        "half an emoji (an unpaired surrogate)",
        kombu(lambda key: celery_body(upsert(key, name="Lamp \ud83d"))),
        Quarantine("text", "half of a surrogate pair"),
    ),
    # -- body shapes ------------------------------------------------------------------------
    Case(
        "a body that is a list of two",
        kombu(lambda key: json.dumps([[upsert(key)], {}]).encode()),
        Quarantine("shape", "a list of 2"),
    ),
    Case(
        "the command where the argument list belongs",
        kombu(lambda key: json.dumps([upsert(key), {}, {}]).encode()),
        Quarantine("shape", "body.args"),
    ),
    Case(
        "the command as the whole body",
        kombu(lambda key: json.dumps(upsert(key)).encode()),
        Quarantine("shape", "a JSON object"),
    ),
    Case(
        "keyword arguments that are not an object",
        kombu(lambda key: json.dumps([[upsert(key)], [1], {}]).encode()),
        Quarantine("shape", "body.kwargs"),
    ),
    Case(
        "a callback to run afterwards",
        kombu(
            lambda key: json.dumps(
                [[upsert(key)], {}, {"callbacks": [{"task": "celery.chord_unlock"}]}]
            ).encode()
        ),
        Quarantine("shape", "callbacks"),
    ),
    Case(
        "protocol 1 without a task name",
        kombu(
            lambda key: json.dumps({"args": [upsert(key)], "kwargs": {}}).encode(), lambda key: {}
        ),
        Quarantine("header", "headers.task: missing"),
    ),
    # -- what clients and Flower's API send: an outcome for the key ------------------------
    Case(
        "keyword arguments only",
        kombu(lambda key: celery_body(**upsert(key))),
        Outcome("rejected", "invalid_command", "0 positional and 5 keyword"),
    ),
    Case(
        "positional and keyword arguments",
        kombu(lambda key: json.dumps([[upsert(key)], {"extra": 1}, None]).encode()),
        Outcome("rejected", "invalid_command", "1 positional and 1 keyword"),
    ),
    Case(
        "expires in the future",
        kombu(command, lambda key: task_headers(expires=in_seconds(600))),
        Outcome("succeeded"),
    ),
    Case(
        "a countdown of a second",
        kombu(command, lambda key: task_headers(eta=in_seconds(1))),
        Outcome("succeeded"),
    ),
    Case(
        "time limits within the worker's",
        kombu(command, lambda key: task_headers(timelimit=[60, 50])),
        Outcome("succeeded"),
    ),
    Case(
        "a retried message",
        kombu(command, lambda key: task_headers(retries=3)),
        Outcome("succeeded"),
    ),
    Case(
        "a protocol 1 body",
        kombu(
            lambda key: json.dumps(
                {
                    "task": UPSERT_PRODUCT,
                    "id": key,
                    "args": [upsert(key)],
                    "kwargs": {},
                    "retries": 0,
                    "eta": None,
                    "expires": None,
                    "utc": True,
                }
            ).encode(),
            lambda key: {},
        ),
        Outcome("succeeded"),
    ),
    Case(
        "protocol 2 headers with a protocol 1 body",
        kombu(lambda key: json.dumps({"args": [upsert(key)], "kwargs": {}}).encode()),
        Outcome("succeeded"),
    ),
    Case(
        "a command sent to another command's task",
        kombu(command, lambda key: task_headers(task=PLACE_ORDER)),
        Outcome("rejected", "invalid_command", "was sent to the 'place_order' task"),
    ),
    # -- what py-amqp cannot read (RabbitMQ) ---------------------------------------------
    Case(
        "properties: a header table nested 3000 levels deep",
        kombu(command, lambda key: task_headers(deep=nested(3000))),
        Quarantine("unreadable", "nested too deeply"),
        frozenset({"amqp"}),
    ),
    Case(
        "properties: a header timestamp past year 9999",
        far_future(kombu(command, lambda key: task_headers(when=datetime(2000, 1, 1)))),
        Quarantine("unreadable", "properties cannot be read"),
        frozenset({"amqp"}),
    ),
    Case(
        "properties: a compressed body",
        kombu(command, lambda key: task_headers(id=key), compression="zlib"),
        Quarantine("unreadable", "compress", answers=None),
        frozenset({"amqp"}),
    ),
]


def _stage(broker: str, url: str) -> Iterator[Stage]:
    rig = FaultRig(broker_url=url) if broker == "redis" else None
    queue = rig.queue if rig else f"faults-{unique('amqp').lower()}.commands"
    env = {"ORDERQ_COMMAND_QUEUE": queue, "CELERY_BROKER_URL": url}
    worker = WorkerProcess(concurrency=1, env=env, name=f"malformed-{broker}")
    from orderq.settings import Settings

    publisher = Publisher(Settings(broker_url=url, command_queue=queue))
    worker.start()
    try:
        yield Stage(broker, url, queue, worker, publisher)
    finally:
        worker.stop()
        publisher.close()
        if broker == "redis":
            clean_redis_queue(url, queue)
        else:
            delete_amqp_queue(url, queue)


@pytest.fixture(scope="module")
def redis_stage(migrated_database: str) -> Iterator[Stage]:
    from tests.support.environment import TEST_BROKER_URL

    yield from _stage("redis", TEST_BROKER_URL)


@pytest.fixture(scope="module")
def amqp_stage(migrated_database: str) -> Iterator[Stage]:
    if not rabbitmq_reachable():
        pytest.skip(f"RabbitMQ is not reachable at {AMQP_URL}")
    yield from _stage("amqp", AMQP_URL)


def _params() -> list:
    return [
        pytest.param(broker, case, id=f"{broker}: {case.name}")
        for broker in ("redis", "amqp")
        for case in CASES
        if broker in case.brokers
    ]


@pytest.mark.parametrize(("broker", "case"), _params())
def test_a_malformed_message_cannot_stop_the_worker(
    broker: str, case: Case, request: pytest.FixtureRequest, engine: Engine
) -> None:
    stage: Stage = request.getfixturevalue(f"{broker}_stage")
    key = unique("RAW")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # py-amqp encodes nested headers recursively
    try:
        case.send(stage, key)
    finally:
        sys.setrecursionlimit(limit)

    after = UpsertProduct(key=unique("AFTER"), sku=unique("SKU"), name="After", price_cents=1)
    stage.publisher.publish(after)
    decided = eventually(
        lambda: lookup(engine, after.key),
        until=lambda status: status.is_terminal,
        what=f"an outcome for {after.key}, published after the bad message",
        timeout=DECIDED_WITHIN,
    )

    assert decided.status == "succeeded"
    assert stage.worker.is_running() and stage.worker.pid == stage.main_pid
    if isinstance(case.expect, Quarantine):
        _assert_quarantined(engine, key, case.expect)
    else:
        _assert_outcome(engine, key, case.expect)


def _assert_quarantined(engine: Engine, key: str, expect: Quarantine) -> None:
    rows = eventually(
        lambda: quarantined(engine, key), what=f"the quarantine row of the message for {key}"
    )
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["problem"], row["state"]) == (expect.problem, "quarantined"), row
    assert expect.says in row["reason"], row
    assert row["deliveries"] == 1, row  # delivered once: not looping
    if expect.answers is None:
        status = lookup(engine, key)
        assert row["idempotency_key"] is None and status.status == "unknown", (row, status)
        return
    # the quarantine row commits first, the key's answer right after it
    status = eventually(
        lambda: lookup(engine, key), until=lambda s: s.is_terminal, what=f"an answer for {key}"
    )
    assert row["idempotency_key"] == key and row["rejection"] == expect.answers, row
    assert (status.status, status.reason) == ("rejected", expect.answers), status
    assert status.message == row["reason"]
    assert delivery_count(engine, key) == 0  # never reached the command path


def _assert_outcome(engine: Engine, key: str, expect: Outcome) -> None:
    status = eventually(
        lambda: lookup(engine, key), until=lambda s: s.is_terminal, what=f"an outcome for {key}"
    )
    assert (status.status, status.reason) == (expect.status, expect.reason), status
    assert expect.says in (status.message or ""), status
    assert quarantined(engine, key) == []
    assert delivery_count(engine, key) <= 1
