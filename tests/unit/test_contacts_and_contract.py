"""Phone keys (any spelling of a number finds it) and the optional contact fields that
leave the fingerprint of earlier payloads unchanged."""

from __future__ import annotations

import hashlib
import json

import pytest

from producers.commands import CustomerDetails, PlaceOrder, RegisterMember, parse_command
from producers.errors import InvalidCommand
from worker.domain.contacts import phone_key, phone_search_keys

LONDON = "442079460000"


@pytest.mark.parametrize(
    "typed",
    [
        "+44 (0)20 7946-0000",
        "+44 20 7946 0000",
        "0044 20 7946 0000",
        "020 7946 0000",
        "02079460000",
    ],
)
def test_every_spelling_of_a_uk_number_keys_the_same_in_region_gb(typed):
    assert phone_key(typed, "GB") == LONDON


def test_without_a_region_an_international_query_also_tries_the_national_digits():
    assert phone_key("020 7946 0000", None) == "02079460000"
    assert phone_search_keys("+44 (0)20 7946-0000", None) == [LONDON, "02079460000"]


def test_the_start_of_a_number_keys_to_the_start_of_its_key():
    assert LONDON.startswith(phone_key("020 7946", "GB"))
    assert phone_key("no digits", "GB") is None


OLD_REGISTRATION = {"type": "register_member", "key": "k-1", "member": "M-1", "name": "Ann"}


def test_a_payload_from_before_the_contact_fields_keeps_its_fingerprint():
    command = parse_command(OLD_REGISTRATION)
    body = {
        "type": "register_member",
        "member": "M-1",
        "name": "Ann",
        "loan_limit": 5,
        "status": "active",
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))

    assert command.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()
    assert "email" not in command.message() and "phone" not in command.message()


def test_given_contact_fields_are_part_of_the_body_and_validated():
    with_phone = parse_command({**OLD_REGISTRATION, "phone": "020 7946 0000"})
    assert with_phone.fingerprint() != parse_command(OLD_REGISTRATION).fingerprint()
    assert with_phone.message()["phone"] == "020 7946 0000"
    with pytest.raises(InvalidCommand, match=r"email: .*not an e-mail address"):
        parse_command({**OLD_REGISTRATION, "email": "nobody"})
    with pytest.raises(InvalidCommand, match=r"phone: .*not a phone number"):
        parse_command({**OLD_REGISTRATION, "phone": "call me"})
    assert isinstance(with_phone, RegisterMember)


def test_place_order_without_customer_details_is_the_same_message_as_before():
    order = PlaceOrder(key="o-1", customer_ref="c", lines=[{"sku": "MUG-1", "qty": 1}])
    assert set(order.message()) == {"type", "key", "customer_ref", "lines"}
    detailed = order.model_copy(update={"customer": CustomerDetails(name="Zoë")})
    assert detailed.body()["customer"] == {"name": "Zoë", "email": None, "phone": None}
