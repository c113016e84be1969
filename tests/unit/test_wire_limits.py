"""Limits on a message before any field is validated: size, NUL characters, usable keys."""

from __future__ import annotations

import pytest

from producers.commands import MAX_KEY_LENGTH, InvalidCommand
from producers.wire import check_message, key_of, storable_key


def test_a_message_over_the_size_limit_is_refused_with_its_size():
    message = {"key": "k-1", "type": "place_order", "customer_ref": "x" * 2000}

    with pytest.raises(InvalidCommand) as refused:
        check_message(message, max_bytes=1024)

    assert "exceeds the 1024-byte limit" in refused.value.problem
    assert refused.value.key == "k-1"


def test_a_nul_character_is_refused_naming_the_field():
    message = {"key": "k-2", "lines": [{"sku": "A", "qty": 1}, {"sku": "B\x00", "qty": 1}]}

    with pytest.raises(InvalidCommand) as refused:
        check_message(message, max_bytes=65536)

    assert refused.value.problem.startswith("lines.1.sku: contains a NUL character")


def test_a_nul_character_in_a_field_name_is_named_printably():
    with pytest.raises(InvalidCommand) as refused:
        check_message({"key": "k-3", "bad\x00name": 1}, max_bytes=65536)

    assert refused.value.problem.startswith("bad\\0name: contains a NUL")


def test_a_message_within_limits_passes():
    check_message({"key": "k-4", "type": "place_order", "customer_ref": "ü" * 10}, 1024)


@pytest.mark.parametrize(
    "candidate",
    [None, 7, "", "has space", "x" * (MAX_KEY_LENGTH + 1), "tab\tkey", "nul\x00", "ключ"],
)
def test_unusable_keys_are_not_used_to_store_anything(candidate):
    assert storable_key(candidate) is None


def test_a_well_formed_key_is_usable():
    assert storable_key("web-shop:order/42") == "web-shop:order/42"
    assert key_of({"key": "K-1"}) == "K-1"
    assert key_of(["K-1"]) is None
