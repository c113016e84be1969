"""The message Celery builds its request from, once the guard has read the original.

Celery's strategy and request read a message's headers, body, payload, content type,
properties and delivery info, and acknowledge or reject it. `TaskMessage` gives them
the guard's checked contents and passes acknowledgement through to the original, so
the broker sees exactly one message handled — accepted as the task it names, or
re-addressed to the quarantine task — and Celery never parses what the sender wrote.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from worker.adapters.envelope import WORKFLOW_PARTS, Accepted
from worker.adapters.quarantine import QuarantineRecord

JSON = "application/json"


class TaskMessage:
    """A kombu message as the guard hands it to Celery (see the module docstring)."""

    content_type = JSON
    content_encoding = "utf-8"

    def __init__(
        self,
        original: Any,
        headers: dict[str, Any],
        body: bytes,
        payload: tuple[list[Any], dict[str, Any], dict[str, Any]],
    ) -> None:
        self.original = original
        self.headers = headers
        self.body = body
        self.payload = payload
        self.properties = _properties(getattr(original, "properties", None))
        self.delivery_info = _delivery_info(getattr(original, "delivery_info", None))

    def decode(self) -> Any:
        return self.payload

    def __getattr__(self, name: str) -> Any:
        # ack, reject, ack_log_error, reject_log_error, acknowledged, delivery_tag, channel
        return getattr(self.original, name)

    def __repr__(self) -> str:
        return f"<TaskMessage {self.headers.get('task')}[{self.headers.get('id')}]>"


def accepted_message(original: Any, verdict: Accepted) -> TaskMessage:
    """The original message with the guard's headers and body."""
    return TaskMessage(original, verdict.headers, verdict.body, verdict.payload)


def quarantine_message(original: Any, record: QuarantineRecord, task_name: str) -> TaskMessage:
    """The original message re-addressed to the task that stores it in the quarantine."""
    task_id = str(uuid.uuid4())
    args: list[Any] = [record.as_dict()]
    embed = dict.fromkeys(WORKFLOW_PARTS)
    headers = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "root_id": task_id,
        "retries": 0,
        "eta": None,
        "expires": None,
        "timelimit": [None, None],
        "argsrepr": f"({record.problem}: {record.reason[:200]})",
        "kwargsrepr": "{}",
    }
    body = json.dumps([args, {}, embed]).encode()
    return TaskMessage(original, headers, body, (args, {}, embed))


def _properties(properties: Any) -> dict[str, Any]:
    """The properties Celery reads (reply_to, correlation_id, priority), if well-formed."""
    if not isinstance(properties, Mapping):
        return {}
    kept: dict[str, Any] = {}
    for name in ("correlation_id", "reply_to"):
        value = properties.get(name)
        if isinstance(value, str) and len(value) <= 255 and value.isprintable():
            kept[name] = value
    priority = properties.get("priority")
    if isinstance(priority, int) and not isinstance(priority, bool) and 0 <= priority <= 255:
        kept["priority"] = priority
    return kept


def _delivery_info(info: Any) -> dict[str, Any]:
    """Where the broker says the message came from (a retry is published back there)."""
    if not isinstance(info, Mapping):
        return {}
    kept: dict[str, Any] = {}
    for name in ("exchange", "routing_key", "consumer_tag"):
        value = info.get(name)
        if isinstance(value, str):
            kept[name] = value
    kept["redelivered"] = info.get("redelivered") is True
    return kept
