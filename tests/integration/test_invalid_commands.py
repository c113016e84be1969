"""Bad input gets a clear answer: `rejected: invalid_command` stored under the key, with
a message naming the problem — never a crash, never a retry."""

from __future__ import annotations

import pytest

from producers.outcomes import lookup
from tests.support.ids import unique
from tests.support.outcomes import scalar

LINE = {"sku": "MUG-1", "qty": 1}


def place_order(key: str, **changes) -> dict:
    message = {"type": "place_order", "key": key, "customer_ref": "c-1", "lines": [LINE]}
    message.update(changes)
    return {name: value for name, value in message.items() if value is not ...}


CASES = {
    "missing field": (lambda k: place_order(k, customer_ref=...), "customer_ref: Field required"),
    "extra field": (
        lambda k: place_order(k, coupon="FREE"),
        "coupon: Extra inputs are not permitted",
    ),
    "wrong type": (
        lambda k: place_order(k, lines=[{"sku": "MUG-1", "qty": "two"}]),
        "lines.0.qty: Input should be a valid integer",
    ),
    "zero quantity": (
        lambda k: place_order(k, lines=[{"sku": "MUG-1", "qty": 0}]),
        "lines.0.qty: Input should be greater than 0",
    ),
    "negative quantity": (
        lambda k: place_order(k, lines=[{"sku": "MUG-1", "qty": -3}]),
        "lines.0.qty: Input should be greater than 0",
    ),
    "unknown command type": (
        lambda k: place_order(k, type="launch_rocket"),
        "type: unknown command type 'launch_rocket'",
    ),
    "type sent to the wrong task": (
        lambda k: {"type": "cancel_order", "key": k, "order_number": "ORD-000001"},
        "type: 'cancel_order' was sent to the 'place_order' task",
    ),
    "oversized": (
        lambda k: place_order(k, customer_ref="x" * 70_000),
        "command: 70",  # "... bytes exceeds the 65536-byte limit"
    ),
    "NUL character": (
        lambda k: place_order(k, customer_ref="bad\x00ref"),
        "customer_ref: contains a NUL character",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_invalid_message_is_stored_as_rejected_naming_the_problem(runner, engine, case):
    build, expected = CASES[case]
    key = unique("BAD")

    outcome = runner.run(build(key), "place_order")
    stored = lookup(engine, key)

    assert (outcome.status, outcome.reason) == ("rejected", "invalid_command")
    assert (stored.status, stored.reason) == ("rejected", "invalid_command")
    assert expected in stored.message
    assert scalar(engine, "SELECT count(*) FROM orders WHERE idempotency_key = :k", k=key) == 0


def test_a_repeated_invalid_message_replays_its_rejection(runner):
    message = place_order(unique("BAD"), customer_ref=...)

    first, second = runner.run(message, "place_order"), runner.run(message, "place_order")

    assert (second.reason, second.message) == (first.reason, first.message)
    assert second.replayed and not first.replayed


def test_the_wrong_argument_shape_is_an_invalid_command(runner, engine):
    key = unique("BAD")

    outcome = runner.run_arguments([place_order(key), "extra"], {}, "place_order")

    assert outcome.reason == "invalid_command"
    assert "expected one JSON object as the only argument, got 2 positional" in (
        lookup(engine, key).message
    )


def test_an_unknown_task_name_is_an_invalid_command(runner, engine):
    key = unique("BAD")

    outcome = runner.reject_unknown_task("orderq.orders.place_order_v2", [place_order(key)], {})

    assert outcome.reason == "invalid_command"
    assert (
        "no command is sent to task 'orderq.orders.place_order_v2'" in lookup(engine, key).message
    )


@pytest.mark.parametrize(
    "message",
    [["not", "an", "object"], "just text", None, {"type": "place_order", "key": "has space"}],
    ids=["list", "string", "null", "unusable key"],
)
def test_without_a_usable_key_the_rejection_is_answered_but_not_stored(runner, message):
    outcome = runner.run(message, "place_order")

    assert (outcome.status, outcome.reason, outcome.key) == ("rejected", "invalid_command", None)
