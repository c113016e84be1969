"""Hand-made broker messages, sent the way a buggy or hostile upstream would: straight
onto the Redis list, or through kombu with any headers, properties and content type —
never through orderq's publisher.

    body = celery_body({"type": "place_order", "key": key, ...})
    publish(url, queue, body, headers=task_headers("orderq.orders.place_order", id=marker))
    push_redis(url, queue, redis_item(body, headers))      # the Redis envelope by hand
    row = quarantined(engine, marker)                     # the quarantine row, if any
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from kombu import Connection, Queue
from sqlalchemy import Engine, text

AMQP_URL_DEFAULT = "amqp://guest:guest@127.0.0.1:5672//"
PLACE_ORDER = "orderq.orders.place_order"
UPSERT_PRODUCT = "orderq.orders.upsert_product"


def task_headers(task: Any = UPSERT_PRODUCT, **overrides: Any) -> dict[str, Any]:
    """Celery protocol-2 headers; an override of `...` (Ellipsis) removes the header."""
    task_id = str(uuid.uuid4())
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "eta": None,
        "expires": None,
        "timelimit": [None, None],
        "argsrepr": "(...)",
        "kwargsrepr": "{}",
        "origin": "raw-test",
    }
    headers.update(overrides)
    return {name: value for name, value in headers.items() if value is not ...}


def celery_body(*args: Any, **kwargs: Any) -> bytes:
    """A protocol-2 body: [args, kwargs, embed]."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return json.dumps([list(args), kwargs, embed]).encode()


def upsert(key: str, **fields: Any) -> dict[str, Any]:
    """A valid upsert_product command (its SKU is the key's tail)."""
    return {
        "type": "upsert_product",
        "key": key,
        "sku": key.rsplit("-", 1)[-1],
        "name": "Raw",
        "price_cents": 100,
        **fields,
    }


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def publish(
    url: str,
    queue: str,
    body: bytes | str,
    headers: dict[str, Any] | None = None,
    content_type: str | None = "application/json",
    content_encoding: str | None = "utf-8",
    **properties: Any,
) -> None:
    """One message through kombu (Redis or AMQP), to the default exchange."""
    with Connection(url) as connection:
        producer = connection.Producer()
        producer.publish(
            body,
            exchange="",
            routing_key=queue,
            declare=[Queue(queue)],
            content_type=content_type,
            content_encoding=content_encoding,
            headers=headers or {},
            retry=False,
            **properties,
        )


def redis_item(
    body: bytes,
    headers: Any = None,
    queue: str = "",
    content_type: Any = "application/json",
    content_encoding: Any = "utf-8",
    **properties: Any,
) -> dict[str, Any]:
    """The JSON envelope kombu keeps on a Redis list, built by hand (then altered)."""
    envelope_properties: dict[str, Any] = {
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    envelope_properties.update(properties)
    return {
        "body": base64.b64encode(body).decode(),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": task_headers() if headers is None else headers,
        "properties": envelope_properties,
    }


def push_redis(url: str, queue: str, item: Any) -> None:
    """LPUSH one raw item (bytes as they are; anything else as JSON) onto the queue."""
    raw = item if isinstance(item, bytes | str) else json.dumps(item)
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.lpush(queue, raw)
    finally:
        client.close()


def quarantined(engine: Engine, marker: str) -> list[dict[str, Any]]:
    """Quarantine rows of the message carrying `marker` (its task id or key, or text in
    its body)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, problem, reason, idempotency_key, rejection, deliveries, state "
                "FROM quarantined_messages WHERE task_id = :m OR idempotency_key = :m "
                "OR position(convert_to(:m, 'UTF8') in body) > 0"
            ),
            {"m": marker},
        ).mappings()
        return [dict(row) for row in rows]


def delivery_count(engine: Engine, key: str) -> int:
    """How many messages the workers took for `key` (0: none reached the command path)."""
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT deliveries FROM command_deliveries WHERE idempotency_key = :k"),
            {"k": key},
        ).scalar()
    return count or 0


def clean_redis_queue(url: str, queue: str) -> None:
    """Remove the queue and kombu's bookkeeping for it from a test Redis database."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = [*client.scan_iter(match=f"{queue}*"), *client.scan_iter(match=f"_kombu.*{queue}*")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def delete_amqp_queue(url: str, queue: str) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        try:
            channel.queue_delete(queue)
        finally:
            channel.close()
