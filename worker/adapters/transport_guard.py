"""Guards below Celery: the broker transports, where a message is read before anything else.

Some messages never reach Celery's handler, because kombu or py-amqp cannot read them
and raise in the worker's event loop, which kills the worker (or, with the message
back on the queue, every worker that restarts). Each guard here turns such a message
into a well-formed one that carries the problem in the `x-orderq-unreadable` header;
the consumer's guard then quarantines it like any other bad message.

Redis (kombu's virtual transport keeps the whole envelope as JSON on a list):
- an item that is not JSON, not an object, with `properties`/`headers` of the wrong
  type, a `body_encoding` kombu has no codec for, a body that is not base64 or not a
  string, or a `compression` header: wrapped as unreadable, its raw bytes kept;
- the bookkeeping fields are repaired in place, because kombu's ack emulation trusts
  them: a fresh delivery tag (a forged or duplicate one would overwrite another
  message's entry in the unacked hash), `delivery_info` pointing at the queue the item
  was taken from (an unknown exchange there made a restored message vanish),
  `headers` null -> {} and a priority kombu cannot parse removed (both made kombu's
  restore drop the message after logging "Could not restore message").

RabbitMQ (py-amqp decodes the message properties in the event loop):
- a header table nested deeper than Python's recursion limit, or a timestamp out of
  datetime's range: the content header is replaced by one that says so (the body is
  kept), so the frame reader stays in step with the broker;
- a `compression` header: removed before kombu would decompress (a small body can
  expand without bound), and the message marked unreadable.

`guard_transport(connection)` puts the guarded classes on a kombu connection before it
connects; other transports are left as they are (docs/reliability.md).
"""

from __future__ import annotations

import base64
import uuid
from functools import cache
from struct import pack, unpack_from
from typing import Any

from amqp.basic_message import Message as AmqpMessage
from amqp.method_framing import frame_handler as amqp_frame_handler
from kombu import Connection
from kombu.transport import pyamqp, resolve_transport
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.imports import symbol_by_name
from kombu.utils.json import dumps, loads

from worker.adapters.envelope import RAW_SIZE_HEADER, UNREADABLE_HEADER

UNREADABLE_TYPE = "application/x-orderq-unreadable"
#: The most of an unreadable raw message carried on to the quarantine store.
KEPT_RAW_BYTES = 1 << 20
COMPRESSED = "headers.compression: compressed messages are not accepted (orderq commands are small)"


def guard_transport(connection: Connection) -> Connection:
    """Use the guarded transport class on `connection` (before it connects)."""
    guarded = guarded_transport_class(connection.transport_cls)
    if guarded is not None:
        connection.transport_cls = guarded
    return connection


def guarded_transport_class(transport: Any) -> type | None:
    """The guarded subclass of a kombu transport class or alias, None if there is none."""
    if isinstance(transport, str):
        try:
            transport = symbol_by_name(resolve_transport(transport))
        except Exception:  # an alias kombu does not know: leave it to kombu to say so
            return None
    if not isinstance(transport, type):
        return None
    return _guarded(transport)


@cache
def _guarded(transport: type) -> type | None:
    if getattr(transport, "orderq_guarded", False):
        return None
    name = f"Guarded{transport.__module__.rsplit('.', 1)[-1].title()}{transport.__name__}"
    if issubclass(transport, kombu_redis.Transport):
        channel = type(f"{name}Channel", (_RedisChannelGuard, transport.Channel), {})
        return type(
            name,
            (_RedisTransportGuard, transport),
            {"Channel": channel, "orderq_guarded": True},
        )
    if issubclass(transport, pyamqp.Transport):
        return type(
            name,
            (transport,),
            {"Connection": GuardedAmqpConnection, "orderq_guarded": True},
        )
    return None


# -- Redis ----------------------------------------------------------------------------------


class _RedisTransportGuard:
    """Every envelope goes through `redis_envelope` before kombu builds a message."""

    def _deliver(self, message: Any, queue: str) -> None:
        super()._deliver(redis_envelope(message, queue), queue)  # type: ignore[misc]


class _RedisChannelGuard:
    """Keeps the raw item a read popped, so an item kombu cannot parse is still delivered."""

    _popped: tuple[bytes, bytes] | None = None

    def _get_client(self) -> type:
        client = super()._get_client()  # type: ignore[misc]
        channel = self

        class RememberingClient(client):  # type: ignore[misc, valid-type]
            def parse_response(self, connection: Any, command_name: Any, **options: Any) -> Any:
                response = super().parse_response(connection, command_name, **options)
                if command_name == "BRPOP" and response:
                    channel._popped = response
                elif command_name == "RPOP" and response:
                    channel._popped = (b"", response)
                return response

        return RememberingClient

    def _brpop_read(self, **options: Any) -> Any:
        self._popped = None
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        except Exception:
            popped, self._popped = self._popped, None
            problem = _unparsable(popped[1]) if popped is not None else None
            if problem is None:  # not a parse failure: the error came from further on
                raise
            dest = bytes_to_str(popped[0]).rsplit(self.sep, 1)[0]  # type: ignore[attr-defined]
            self.connection._deliver(unreadable_envelope(popped[1], dest, problem), dest)  # type: ignore[attr-defined]
            return True

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        # basic_get (the worker itself consumes through _brpop_read)
        self._popped = None
        try:
            payload = super()._get(queue)  # type: ignore[misc]
        except Exception:
            popped, self._popped = self._popped, None
            problem = _unparsable(popped[1]) if popped is not None else None
            if problem is None:
                raise
            return unreadable_envelope(popped[1], queue, problem)
        return redis_envelope(payload, queue)


def _unparsable(item: bytes) -> str | None:
    """Why kombu cannot parse a raw item (None if it can)."""
    try:
        loads(bytes_to_str(item))
    except RecursionError:
        return "not readable: JSON nested too deeply"
    except Exception as error:
        return f"not JSON ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
    return None


def redis_envelope(payload: Any, queue: str) -> Any:
    """A parsed Redis item kombu can build a message from: repaired, or wrapped unreadable."""
    try:
        problem = _envelope_problem(payload, queue)
    except Exception as error:  # nothing about a hand-made envelope may escape
        problem = f"not readable ({type(error).__name__})"
    if problem is None:
        return payload
    try:
        raw = dumps(payload).encode()
    except Exception:
        raw = repr(payload).encode("utf-8", "backslashreplace")
    return unreadable_envelope(raw, queue, problem)


def _envelope_problem(payload: Any, queue: str) -> str | None:
    if not isinstance(payload, dict):
        return f"the message is {_kind(payload)} in JSON, not an object"
    properties = payload.get("properties")
    if properties is None:
        properties = payload["properties"] = {}
    elif not isinstance(properties, dict):
        return f"properties: {_kind(properties)}, not an object"
    headers = payload.get("headers")
    if headers is None:
        payload["headers"] = {}
    elif not isinstance(headers, dict):
        return f"headers: {_kind(headers)}, not a table"
    elif "compression" in headers:
        return COMPRESSED
    encoding = properties.get("body_encoding")
    body = payload.get("body")
    if encoding not in (None, "base64"):
        return f"properties.body_encoding: {str(encoding)[:40]!r} is not one kombu decodes"
    if body is not None and not isinstance(body, str):
        return f"body: {_kind(body)}, not a string"
    if encoding == "base64" and body:
        try:
            base64.b64decode(body.encode("utf-8"))  # as kombu's codec does
        except Exception as error:
            return f"body: not base64 ({' '.join(str(error).split())[:120]})"
    # Ack emulation's bookkeeping, never taken from the message itself:
    previous = properties.get("delivery_info")
    redelivered = isinstance(previous, dict) and previous.get("redelivered") is True
    properties["delivery_tag"] = str(uuid.uuid4())
    properties["delivery_info"] = {"exchange": "", "routing_key": queue}
    if redelivered:
        properties["delivery_info"]["redelivered"] = True
    priority = properties.get("priority")
    if priority is not None and not (
        isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 255
    ):
        del properties["priority"]
    return None


def unreadable_envelope(raw: bytes, queue: str, problem: str) -> dict[str, Any]:
    """A well-formed envelope carrying (the start of) `raw` and why it cannot be read."""
    return {
        "body": base64.b64encode(raw[:KEPT_RAW_BYTES]).decode(),
        "content-encoding": "binary",
        "content-type": UNREADABLE_TYPE,
        "headers": {UNREADABLE_HEADER: f"broker envelope: {problem}", RAW_SIZE_HEADER: len(raw)},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
            "delivery_info": {"exchange": "", "routing_key": queue},
        },
    }


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return {dict: "an object", str: "a string", bool: "a boolean"}.get(type(value), "a number")


# -- RabbitMQ (py-amqp) -----------------------------------------------------------------


class GuardedAmqpChannel(pyamqp.Channel):
    """Marks a compressed message unreadable before kombu would decompress it."""

    def message_to_python(self, raw_message: Any) -> Any:
        headers = raw_message.properties.get("application_headers")
        if isinstance(headers, dict) and "compression" in headers:
            kept = {name: value for name, value in headers.items() if name != "compression"}
            raw_message.properties["application_headers"] = {**kept, UNREADABLE_HEADER: COMPRESSED}
        return super().message_to_python(raw_message)


class GuardedAmqpConnection(pyamqp.Connection):
    """py-amqp's connection with a frame reader that survives unreadable properties."""

    Channel = GuardedAmqpChannel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("frame_handler", guarded_frame_handler)
        super().__init__(*args, **kwargs)


def guarded_frame_handler(connection: Any, callback: Any) -> Any:
    """py-amqp's frame reader, except that a content header it cannot decode is replaced
    by one saying so (same class and body size, so the body frames still follow)."""
    on_frame = amqp_frame_handler(connection, callback)

    def guarded(frame: tuple[int, int, Any]) -> Any:
        try:
            return on_frame(frame)
        except Exception:
            frame_type, channel, buf = frame
            problem = _header_problem(buf) if frame_type == 2 else None
            if problem is None:  # the header reads fine: the error came from elsewhere
                raise
            return on_frame((2, channel, _readable_header(buf, problem)))

    return guarded


def _header_problem(buf: Any) -> str | None:
    try:
        AmqpMessage().inbound_header(buf)
    except RecursionError:
        return "the header table is nested too deeply to read"
    except Exception as error:
        return f"the message properties cannot be read ({type(error).__name__}: {error})"[:300]
    return None


def _readable_header(buf: Any, problem: str) -> bytes:
    class_id, body_size = unpack_from(">HxxQ", buf, 0)
    replacement = AmqpMessage(
        content_type=UNREADABLE_TYPE,
        application_headers={UNREADABLE_HEADER: f"broker envelope: {problem}"},
    )
    return pack(">HHQ", class_id, 0, body_size) + replacement._serialize_properties()
