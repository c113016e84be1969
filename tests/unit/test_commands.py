"""The message contract: validation, normalization, fingerprints (no I/O)."""

from __future__ import annotations

import pytest

from producers.commands import InvalidCommand, PlaceOrder, parse_command


def place_order(**overrides):
    message = {
        "type": "place_order",
        "key": "web-1",
        "customer_ref": "c-1",
        "lines": [{"sku": "mug-1", "qty": 2}],
    }
    message.update(overrides)
    return message


def test_valid_message_parses_and_normalizes_the_sku():
    command = parse_command(place_order())

    assert isinstance(command, PlaceOrder)
    assert command.lines[0].sku == "MUG-1"


def test_fingerprint_ignores_the_key_and_field_order():
    first = parse_command(place_order())
    second = parse_command(dict(reversed(list(place_order(key="web-2").items()))))

    assert first.fingerprint() == second.fingerprint()
    assert first.fingerprint() != parse_command(place_order(customer_ref="c-2")).fingerprint()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"lines": [{"sku": "MUG", "qty": 0}]}, "lines.0.qty"),
        ({"lines": [{"sku": "MUG", "qty": -3}]}, "lines.0.qty"),
        ({"lines": [{"sku": "MUG", "qty": "2"}]}, "lines.0.qty"),
        ({"lines": [{"sku": "bad sku!", "qty": 1}]}, "lines.0.sku"),
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "A", "qty": 1}, {"sku": "a", "qty": 2}]}, "more than one line"),
        ({"customer_ref": ""}, "customer_ref"),
        ({"surprise": 1}, "surprise"),
        ({"key": ""}, "key"),
        ({"key": "has space"}, "key"),
    ],
)
def test_invalid_messages_name_the_problem(overrides, named):
    with pytest.raises(InvalidCommand) as error:
        parse_command(place_order(**overrides))
    assert named in error.value.problem


@pytest.mark.parametrize("key", ["has space", "tab\there", "caf\u00e9"])
def test_a_bad_key_is_explained_in_words_not_as_a_regular_expression(key):
    with pytest.raises(InvalidCommand) as error:
        parse_command(place_order(key=key))

    assert error.value.problem == (
        f"key: {key!r} is not an idempotency key: printable ASCII, no spaces (like web-1001)"
    )


def test_missing_field_is_named():
    message = place_order()
    del message["customer_ref"]
    with pytest.raises(InvalidCommand, match="customer_ref: Field required"):
        parse_command(message)


def test_unknown_type_and_wrong_task_are_refused_with_the_key_kept():
    with pytest.raises(InvalidCommand, match="unknown command type 'teleport'") as error:
        parse_command({"type": "teleport", "key": "k-1"})
    assert error.value.key == "k-1"
    with pytest.raises(InvalidCommand, match="sent to the 'ship_order' task"):
        parse_command(place_order(), expected_type="ship_order")


def test_non_object_message_is_refused():
    with pytest.raises(InvalidCommand, match="expected a JSON object"):
        parse_command(["not", "an", "object"])
