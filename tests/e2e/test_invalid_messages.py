"""Raw messages a careless producer could put on the queue, through the session's real
worker: each gets an answer under its key or a place in the quarantine, the worker
keeps running, and an operator sees, shows, discards or replays what was refused.

(tests/faults/test_malformed_messages.py goes through every class on both brokers.)
"""

from __future__ import annotations

import json

import pytest

from producers.outcomes import lookup
from tests.support.cli import orderq
from tests.support.commands import new_product, order_for
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.outcomes import await_outcome, stock_of
from tests.support.raw_messages import (
    PLACE_ORDER,
    celery_body,
    publish,
    quarantined,
    task_headers,
)

pytestmark = pytest.mark.e2e


def send_raw(settings, body: bytes | str, **headers) -> str:
    """A hand-made Celery message (protocol 2) on the command queue; returns its id."""
    message_headers = task_headers(**{"task": PLACE_ORDER, **headers})
    publish(settings.require_broker_url(), settings.command_queue, body, headers=message_headers)
    return message_headers.get("id", "")


def place_order(key: str, sku: str = "MUG-1", **changes) -> dict:
    return {
        "type": "place_order",
        "key": key,
        "customer_ref": "c",
        "lines": [{"sku": sku, "qty": 1}],
        **changes,
    }


def quarantine_row(engine, marker: str) -> dict:
    [row] = eventually(
        lambda: quarantined(engine, marker), what=f"the quarantined message {marker}"
    )
    return row


def test_unknown_task_name_with_a_key_is_quarantined_and_answered(worker, settings, engine):
    key = unique("RAW")

    send_raw(settings, celery_body(place_order(key)), task="orderq.orders.place_order_v2")
    outcome = await_outcome(engine, key)

    assert (outcome.status, outcome.reason) == ("rejected", "invalid_command")
    assert "no command is sent to task 'orderq.orders.place_order_v2'" in outcome.message
    assert quarantine_row(engine, key)["problem"] == "task"


def test_wrong_arguments_and_oversized_bodies_are_rejected(worker, settings, engine):
    shape_key, big_key = unique("RAW"), unique("RAW")

    send_raw(settings, celery_body(place_order(shape_key), "surplus"))
    send_raw(settings, celery_body(place_order(big_key, customer_ref="x" * 100_000)))

    assert "got 2 positional" in await_outcome(engine, shape_key).message
    assert "exceeds the 65536-byte limit" in await_outcome(engine, big_key).message


def test_half_an_emoji_ends_as_a_clear_invalid_command(worker, settings, engine):
    key = unique("RAW")

    send_raw(settings, celery_body(place_order(key, customer_ref="Ana \ud83d")))
    outcome = await_outcome(engine, key)

    assert (outcome.status, outcome.reason) == ("rejected", "invalid_command")
    assert outcome.message.startswith("body.0.0.customer_ref: contains half of a surrogate pair")


def test_malformed_json_is_quarantined_and_the_worker_carries_on(
    worker, settings, engine, runner, publisher
):
    marker = unique("RAW")
    task_id = send_raw(settings, f'{{"key": "{marker}", "type": "pla'.encode())
    sku = new_product(runner, stock=1)
    after = order_for(sku)
    publisher.publish(after)

    assert await_outcome(engine, after.key).status == "succeeded"
    row = quarantine_row(engine, task_id)
    assert (row["problem"], row["idempotency_key"]) == ("json", None)
    assert lookup(engine, marker).status == "unknown"  # nothing trustworthy to answer
    assert worker.is_running()


def test_an_operator_lists_shows_and_discards_a_quarantined_message(worker, settings, engine):
    key = unique("RAW")
    send_raw(settings, celery_body(place_order(key, customer_ref="\x1b[2J")), id=...)
    row = quarantine_row(engine, key)

    listed = orderq("quarantine", "list", "--key", key, "--json")
    shown = orderq("quarantine", "show", str(row["id"]))
    shown_json = orderq("quarantine", "show", str(row["id"]), "--json")
    discarded = orderq("quarantine", "discard", str(row["id"]), "--reason", "test sender")
    again = orderq("quarantine", "discard", str(row["id"]), "--reason", "twice")

    assert listed.returncode == 0, listed.stderr
    [summary] = json.loads(listed.stdout)
    assert (summary["id"], summary["problem"], summary["rejection"]) == (
        row["id"],
        "header",
        "invalid_command",
    )
    assert shown.returncode == 0 and "headers.id: missing" in shown.stdout
    assert "\x1b" not in shown.stdout  # the sender's escape codes are shown, not obeyed
    assert json.loads(shown_json.stdout)["idempotency_key"] == key
    assert discarded.returncode == 0 and "discarded" in discarded.stdout
    assert again.returncode == 1  # not in a state that allows it: the servers said no
    assert again.stderr.count("\n") == 1 and "was discarded (test sender)" in again.stderr


def test_an_operator_replays_a_repaired_message_under_a_new_key(worker, settings, engine, runner):
    sku = new_product(runner, stock=2)
    key = unique("RAW")
    send_raw(settings, celery_body(place_order(key, sku=sku)), timelimit=[0.001, None])
    row = quarantine_row(engine, key)
    # the quarantine row commits first, the key's answer right after it
    assert await_outcome(engine, key).reason == "invalid_command"

    same_key = orderq("quarantine", "replay", str(row["id"]))
    new_key = unique("FIXED")
    replayed = orderq("quarantine", "replay", str(row["id"]), "--key", new_key, "--wait", "30")
    twice = orderq("quarantine", "replay", str(row["id"]), "--key", unique("AGAIN"))

    assert same_key.returncode == 1
    assert same_key.stderr.count("\n") == 1
    assert "already has an outcome (rejected: invalid_command)" in same_key.stderr
    assert "--key" in same_key.stderr
    assert replayed.returncode == 0, replayed.stderr
    assert f"{new_key}: succeeded" in replayed.stdout
    assert stock_of(engine, sku) == (2, 1)
    assert twice.returncode == 1 and f"already replayed as {new_key}" in twice.stderr
    assert quarantined(engine, key)[0]["state"] == "replayed"


@pytest.mark.parametrize(
    ("arguments", "code", "says"),
    [
        # not found: the servers said no (exit 1, the CLI's rule in docs/cli.md)
        (["show", "999999999"], 1, "#999999999: no such quarantined message"),
        # a usage mistake (exit 2)
        (["discard", "1", "--reason", " "], 2, "--reason must not be empty"),
        (["replay", "999999999"], 1, "no such quarantined message"),
        (["replay", "999999999", "--key", "has space"], 1, "no such quarantined message"),
    ],
)
def test_every_quarantine_command_error_is_one_line(migrated_database, arguments, code, says):
    finished = orderq("quarantine", *arguments)

    assert finished.returncode == code
    assert finished.stderr.count("\n") == 1 and says in finished.stderr
