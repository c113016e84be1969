"""The guards below Celery, in-process: kombu's Redis envelopes and py-amqp's frames.

A Redis item kombu cannot build a message from, or whose bookkeeping its ack emulation
would trust, comes out as an envelope kombu handles; an AMQP content header py-amqp
cannot decode is replaced by one it can, with the body frames still in step.
(tests/faults/test_malformed_messages.py sends the same through real brokers.)
"""

from __future__ import annotations

import base64
import json
import sys
from struct import pack
from typing import Any

import pytest
from amqp.basic_message import Message as AmqpMessage
from amqp.exceptions import FrameSyntaxError
from amqp.method_framing import frame_handler
from kombu import Connection

from worker.adapters.envelope import UNREADABLE_HEADER
from worker.adapters.transport_guard import (
    UNREADABLE_TYPE,
    guard_transport,
    guarded_frame_handler,
    redis_envelope,
)

QUEUE = "orderq.commands"


def envelope(**changes: Any) -> dict[str, Any]:
    item = {
        "body": base64.b64encode(b'[["x"], {}, {}]').decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"task": "orderq.orders.place_order", "id": "t-1"},
        "properties": {
            "delivery_tag": "tag-1",
            "delivery_info": {"exchange": "", "routing_key": QUEUE},
            "body_encoding": "base64",
            "priority": 0,
        },
    }
    item.update(changes)
    return item


def kombu_message(payload: dict[str, Any]) -> Any:
    """Build kombu's virtual-transport message from `payload` (raises if it cannot)."""
    with Connection("memory://") as connection:
        channel = connection.default_channel
        message = channel.Message(payload, channel=channel)
        assert not message.errors
        return message


def test_a_well_formed_envelope_passes_with_fresh_bookkeeping():
    item = envelope()

    guarded = redis_envelope(item, QUEUE)

    properties = guarded["properties"]
    assert guarded["body"] == item["body"] and guarded["headers"]["id"] == "t-1"
    assert properties["delivery_tag"] != "tag-1"  # never the sender's: it keys the unacked hash
    assert properties["delivery_info"] == {"exchange": "", "routing_key": QUEUE}
    assert kombu_message(guarded).body == b'[["x"], {}, {}]'


@pytest.mark.parametrize(
    ("changes", "repaired"),
    [
        ({"headers": None}, lambda item: item["headers"] == {}),
        ({"properties": None}, lambda item: item["properties"]["delivery_tag"]),
        (
            {"properties": {**envelope()["properties"], "priority": float("inf")}},
            lambda item: "priority" not in item["properties"],
        ),
        (
            {"properties": {**envelope()["properties"], "delivery_info": {"exchange": "gone"}}},
            lambda item: item["properties"]["delivery_info"]["routing_key"] == QUEUE,
        ),
    ],
)
def test_bookkeeping_kombu_would_lose_a_message_over_is_repaired(changes, repaired):
    guarded = redis_envelope(envelope(**changes), QUEUE)

    assert UNREADABLE_HEADER not in guarded["headers"]
    assert repaired(guarded)
    kombu_message(guarded)


@pytest.mark.parametrize(
    ("item", "says"),
    [
        (["a", "list"], "an array in JSON"),
        (envelope(properties=[1]), "properties: an array"),
        (envelope(headers=[1]), "headers: an array"),
        (envelope(headers={"compression": "application/x-gzip"}), "compress"),
        (envelope(body=5), "body: a number"),
        (envelope(body="!abcde"), "not base64"),
        (
            envelope(properties={**envelope()["properties"], "body_encoding": "rot13"}),
            "body_encoding",
        ),
    ],
)
def test_an_envelope_kombu_cannot_read_is_wrapped_with_the_reason(item, says):
    guarded = redis_envelope(item, QUEUE)

    assert says in guarded["headers"][UNREADABLE_HEADER]
    assert guarded["content-type"] == UNREADABLE_TYPE
    message = kombu_message(guarded)
    assert json.loads(message.body) == item  # what arrived is kept, to be quarantined


def test_only_transports_with_a_guard_are_swapped():
    redis = guard_transport(Connection("redis://127.0.0.1:1/0"))
    amqp = guard_transport(Connection("amqp://guest:guest@127.0.0.1:1//"))
    memory = guard_transport(Connection("memory://"))

    assert redis.transport_cls.__name__ == "GuardedRedisTransport"
    assert amqp.transport_cls.__name__ == "GuardedPyamqpTransport"
    assert memory.transport_cls == "memory"
    assert guard_transport(redis).transport_cls is redis.transport_cls  # not guarded twice


# -- py-amqp -----------------------------------------------------------------------------


class Reader:
    """Feeds frames of one basic.deliver through a frame handler, like py-amqp's reader."""

    bytes_recv = 0

    def __init__(self, handler: Any) -> None:
        self.delivered: list[AmqpMessage] = []
        self.on_frame = handler(self, lambda channel, sig, args, msg: self.delivered.append(msg))

    def deliver(self, properties: bytes, body: bytes) -> AmqpMessage:
        self.on_frame((1, 1, pack(">HH", 60, 60)))
        self.on_frame((2, 1, pack(">HHQ", 60, 0, len(body)) + properties))
        self.on_frame((3, 1, body))
        return self.delivered[-1]


def properties(**props: Any) -> bytes:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # py-amqp encodes nested tables recursively too
    try:
        return AmqpMessage(**props)._serialize_properties()
    finally:
        sys.setrecursionlimit(limit)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def far_timestamp_table() -> bytes:
    """Properties whose header table holds a timestamp past datetime's range."""
    entry = b"\x04when" + b"T" + pack(">Q", 2**62)
    table = pack(">I", len(entry)) + entry
    flags = pack(">H", 1 << 13)  # only application_headers (the third property) present
    return flags + table


def test_a_header_table_too_deep_for_py_amqp_arrives_marked_unreadable_with_its_body():
    deep = properties(content_type="application/json", application_headers={"x": nested(3000)})
    with pytest.raises(RecursionError):
        Reader(frame_handler).deliver(deep, b"[]")

    reader = Reader(guarded_frame_handler)
    message = reader.deliver(deep, b'[["body"], {}, {}]')
    after = reader.deliver(properties(content_type="application/json"), b"[]")

    headers = message.properties["application_headers"]
    assert "nested too deeply" in headers[UNREADABLE_HEADER]
    assert message.properties["content_type"] == UNREADABLE_TYPE
    assert message.body == b'[["body"], {}, {}]'
    assert after.body == b"[]"  # the reader is still in step


def test_a_timestamp_past_year_9999_arrives_marked_unreadable():
    with pytest.raises((ValueError, OverflowError, OSError, FrameSyntaxError)):
        Reader(frame_handler).deliver(far_timestamp_table(), b"{}")

    message = Reader(guarded_frame_handler).deliver(far_timestamp_table(), b"{}")

    assert "cannot be read" in message.properties["application_headers"][UNREADABLE_HEADER]
