"""The raw-message guard in-process: what it accepts Celery can run, what it refuses it
says why, and the key a message plainly carries is always found.

The bulk of the property testing runs here (hundreds of generated messages a second,
no broker); tests/faults/test_guard_properties.py sends a smaller sample through a real
broker to a real worker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery.utils.time import timezone
from celery.worker.request import Request
from hypothesis import HealthCheck, given, settings
from kombu.asynchronous.timer import to_timestamp
from kombu.serialization import loads

from producers.wire import storable_key
from tests.support.envelopes import Sent, messages
from worker.adapters.envelope import (
    Accepted,
    EnvelopeRules,
    Problem,
    Quarantined,
    RawMessage,
    carried_command,
    classify_envelope,
)
from worker.adapters.quarantine import QuarantineRecord
from worker.adapters.task_message import accepted_message, quarantine_message
from worker.entrypoints.celery_app import app
from worker.entrypoints.consumer import QUARANTINE_TASK

app.loader.import_default_modules()  # every task a worker registers, as it starts
RULES = EnvelopeRules.from_settings(app.settings, app.tasks.keys())
UPSERT = "orderq.orders.upsert_product"
BODY_LIMIT = 64 * 1024
JSON_TYPE = "application/json"


class Original:
    """What a kombu message looks like to the guard (no broker behind it)."""

    def __init__(self, sent: Sent | None = None, **parts: Any) -> None:
        self.headers = sent.headers if sent else parts.get("headers")
        self.body = sent.body if sent else parts.get("body")
        self.content_type = sent.content_type if sent else parts.get("content_type")
        self.content_encoding = sent.content_encoding if sent else parts.get("content_encoding")
        self.properties = {"priority": 0, "reply_to": "x"}
        self.delivery_info = {"exchange": "", "routing_key": "q", "redelivered": False}
        self.acknowledged = False


def verdict_of(headers: Any, body: Any, content_type: Any = "application/json", **extra: Any):
    raw = RawMessage(headers, body, content_type, extra.pop("content_encoding", "utf-8"))
    return classify_envelope(raw, RULES, **extra)


def headers(**overrides: Any) -> dict[str, Any]:
    base = {"lang": "py", "task": UPSERT, "id": "t-1", "retries": 0, "eta": None}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not ...}


def body(*args: Any, **kwargs: Any) -> bytes:
    return json.dumps([list(args), kwargs, None]).encode()


COMMAND = {"type": "upsert_product", "key": "K-1", "sku": "S-1", "name": "n", "price_cents": 1}


def celery_request(verdict: Accepted) -> Request:
    """Build Celery's request from the guarded message, as its strategy does."""
    message = accepted_message(Original(), verdict)
    task = app.tasks[verdict.task]
    request = Request(
        message,
        app=app,
        task=task,
        hostname="unit",
        body=message.body,
        headers=message.headers,
        decoded=False,
    )
    if request.eta:
        to_timestamp(timezone.to_system(request.eta))
    assert request.id == verdict.headers["id"]
    assert request.time_limits in ([None, None], (None, None)) or all(
        limit is None or limit > 0 for limit in request.time_limits
    )
    return request


# -- examples -------------------------------------------------------------------------


def test_a_well_formed_command_is_accepted_with_checked_headers_and_its_own_body():
    sent = body(COMMAND)
    verdict = verdict_of(
        headers(expires=(datetime.now(UTC) + timedelta(minutes=5)).isoformat()), sent
    )

    assert isinstance(verdict, Accepted)
    assert verdict.body == sent  # nothing re-encoded: the pool decodes what was sent
    assert verdict.args == [COMMAND]
    assert verdict.headers["expires"] is None  # decided now: never revoked later
    assert verdict.headers["timelimit"] == [None, None]
    assert celery_request(verdict).args == [COMMAND]


def test_the_w3c_trace_context_passes_so_the_task_continues_the_publishers_trace():
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    verdict = verdict_of(
        headers(traceparent=parent, tracestate="rojo=00f067aa0ba902b7"), body(COMMAND)
    )
    forged = verdict_of(headers(traceparent="00-x\n2026-01-01 INFO forged"), body(COMMAND))

    assert isinstance(verdict, Accepted) and isinstance(forged, Accepted)
    assert verdict.headers["traceparent"] == parent
    assert verdict.headers["tracestate"] == "rojo=00f067aa0ba902b7"
    assert celery_request(verdict).request_dict["traceparent"] == parent
    assert "traceparent" not in forged.headers  # not printable: left behind


@pytest.mark.parametrize(
    ("message_headers", "message_body", "problem", "says", "key"),
    [
        (headers(id=...), body(COMMAND), Problem.HEADER, "headers.id: missing", "K-1"),
        (headers(task=["x"]), body(COMMAND), Problem.HEADER, "headers.task", "K-1"),
        (headers(task="celery.ping"), body(COMMAND), Problem.TASK, "Celery's own", "K-1"),
        (headers(timelimit=[0.001, None]), body(COMMAND), Problem.TIME_LIMIT, "floor", "K-1"),
        (headers(timelimit=[60, 60]), body(COMMAND), Problem.TIME_LIMIT, "below the", "K-1"),
        (headers(retries=True), body(COMMAND), Problem.HEADER, "headers.retries", "K-1"),
        (headers(eta="soon"), body(COMMAND), Problem.HEADER, "headers.eta", "K-1"),
        (headers(), b'[[{"key": "K-1"}], {}, {}', Problem.JSON, "not valid JSON", None),
        (headers(), json.dumps([[COMMAND], {}]).encode(), Problem.SHAPE, "a list of 2", "K-1"),
        (headers(), body({**COMMAND, "name": "\udc00"}), Problem.TEXT, "body.0.0.name", "K-1"),
    ],
)
def test_a_refused_message_says_which_field_and_keeps_a_key_plainly_there(
    message_headers, message_body, problem, says, key
):
    verdict = verdict_of(message_headers, message_body)

    assert isinstance(verdict, Quarantined)
    assert verdict.problem is problem
    assert says in verdict.reason
    assert verdict.key == key


def test_an_expired_message_is_answered_as_expired():
    verdict = verdict_of(headers(expires="2001-01-01T00:00:00Z"), body(COMMAND))

    assert isinstance(verdict, Quarantined)
    assert (verdict.problem, verdict.rejection, verdict.key) == (Problem.EXPIRED, "expired", "K-1")


def test_an_expired_maintenance_job_is_left_to_celery_to_skip():
    verdict = verdict_of(
        headers(task="orderq.maintenance.purge_ledger", expires="2001-01-01T00:00:00+00:00"),
        body(),
    )

    assert isinstance(verdict, Accepted)
    assert verdict.headers["expires"] == "2001-01-01T00:00:00+00:00"
    assert celery_request(verdict).expires is not None


def test_an_eta_beyond_the_bound_is_refused_and_one_within_it_accepted():
    far = (datetime.now(UTC) + timedelta(seconds=RULES.max_delay_seconds + 60)).isoformat()
    near = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()

    assert verdict_of(headers(eta=far), body(COMMAND)).problem is Problem.SCHEDULE
    accepted = verdict_of(headers(eta=near), body(COMMAND))
    assert isinstance(accepted, Accepted)
    assert celery_request(accepted).eta is not None


def test_a_protocol_1_message_is_accepted_as_protocol_2():
    message = {"task": UPSERT, "id": "p1", "args": [COMMAND], "kwargs": {}, "retries": 1}

    verdict = verdict_of({}, json.dumps(message).encode())

    assert isinstance(verdict, Accepted)
    assert (verdict.headers["id"], verdict.headers["retries"]) == ("p1", 1)
    assert json.loads(verdict.body)[:2] == [[COMMAND], {}]
    assert celery_request(verdict).args == [COMMAND]


def test_the_key_is_found_where_a_sender_plainly_put_it():
    assert carried_command([COMMAND], {}) == COMMAND
    assert carried_command([], COMMAND) == COMMAND
    assert carried_command([], {"message": COMMAND}) == COMMAND
    assert carried_command(COMMAND, {}) == COMMAND
    assert carried_command([{"key": "has space"}], {}) is None


def test_a_quarantined_message_becomes_a_task_message_for_the_quarantine():
    original = Original(
        headers=headers(id=...), body=body(COMMAND), content_type="application/json"
    )
    verdict = classify_envelope(RawMessage.of(original), RULES)
    record = QuarantineRecord.capture(RawMessage.of(original), verdict, "redis", "q", BODY_LIMIT)

    message = quarantine_message(original, record, QUARANTINE_TASK)
    request = Request(
        message, app=app, task=app.tasks[QUARANTINE_TASK], hostname="unit", decoded=False
    )

    assert request.args == [record.as_dict()]
    assert QuarantineRecord.from_dict(request.args[0]) == record
    assert message.acknowledged is original.acknowledged  # acknowledging goes to the original


def test_a_quarantine_record_from_elsewhere_is_kept_as_such():
    record = QuarantineRecord.from_dict({"key": "K-1", "reason": 5})

    assert (record.problem, record.key) == ("refused", None)
    assert "not a quarantine record" in record.reason


# -- properties over generated messages ------------------------------------------------


def _json_safe(value: Any) -> None:
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # no unpaired surrogate
    assert "\x00" not in text and "\\u0000" not in text


@settings(
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sent=messages(skus=["SKU-A", "SKU-B"]))
def test_every_generated_message_is_accepted_for_celery_or_quarantined_with_its_key(sent: Sent):
    original = Original(sent)
    raw = RawMessage.of(original)

    verdict = classify_envelope(raw, RULES)

    if isinstance(verdict, Accepted):
        assert verdict.task in RULES.tasks
        request = celery_request(verdict)
        args, kwargs, _ = loads(verdict.body, JSON_TYPE, "utf-8", accept={JSON_TYPE})
        assert (args, kwargs) == (verdict.args, verdict.kwargs) == (request.args, request.kwargs)
        if sent.key is not None:
            assert carried_command(args, kwargs)["key"] == sent.key
        return
    assert isinstance(verdict, Quarantined)
    assert "\n" not in verdict.reason and len(verdict.reason) <= 1000
    verdict.reason.encode("utf-8")
    if sent.key is not None:
        assert verdict.key == sent.key, verdict
    else:
        assert verdict.key is None or storable_key(verdict.key) == verdict.key
    record = QuarantineRecord.capture(raw, verdict, "redis", "q", BODY_LIMIT)
    _json_safe(record.as_dict())
    assert len(record.body_bytes()) <= BODY_LIMIT
    assert record.body_size == len(sent.body)
