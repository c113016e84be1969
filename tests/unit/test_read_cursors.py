"""Keyset cursors: round trip, and every way a cursor is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orderq.read.cursors import CursorCodec
from orderq.read.errors import InvalidCursor, InvalidQuery
from orderq.read.matching import fuzzy_words, kind_of
from orderq.read.pages import checked_limit, checked_query

MOMENT = datetime(2026, 11, 29, 8, 30, 15, 123456, tzinfo=UTC)
TYPES = (datetime, int)


def test_a_cursor_round_trips_its_typed_key():
    codec = CursorCodec("s3cret")
    cursor = codec.encode("orders_of_customer", {"customer": "c-1"}, [MOMENT, 42])

    assert codec.decode(cursor, "orders_of_customer", {"customer": "c-1"}, TYPES) == (MOMENT, 42)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # the signature
        lambda c: "X" + c[1:] if c[0] != "X" else "Y" + c[1:],  # the payload
        lambda c: c.replace(".", ""),
        lambda c: c + ".extra",
        lambda c: "",
        lambda c: "☃" * 10,
        lambda c: "a" * 5000,
    ],
    ids=["signature", "payload", "no dot", "extra part", "empty", "unicode", "huge"],
)
def test_an_altered_or_malformed_cursor_is_refused(mangle):
    codec = CursorCodec("s3cret")
    cursor = codec.encode("ledger", {"status": "rejected"}, [MOMENT, 7])

    with pytest.raises(InvalidCursor):
        codec.decode(mangle(cursor), "ledger", {"status": "rejected"}, TYPES)


def test_a_cursor_of_another_listing_filter_or_secret_is_refused():
    cursor = CursorCodec("one").encode("ledger", {"status": "rejected"}, [MOMENT, 7])

    with pytest.raises(InvalidCursor, match="another listing"):
        CursorCodec("one").decode(cursor, "product_movements", {"status": "rejected"}, TYPES)
    with pytest.raises(InvalidCursor, match="other filters"):
        CursorCodec("one").decode(cursor, "ledger", {"status": "succeeded"}, TYPES)
    with pytest.raises(InvalidCursor, match="another secret"):
        CursorCodec("two").decode(cursor, "ledger", {"status": "rejected"}, TYPES)


def test_a_well_signed_key_of_the_wrong_type_is_refused():
    codec = CursorCodec()
    naive = codec.encode("ledger", {}, ["2026-11-29T08:30:00", 7])  # no time zone
    text_id = codec.encode("ledger", {}, [MOMENT, "7"])

    for cursor in (naive, text_id):
        with pytest.raises(InvalidCursor, match="bad key value"):
            codec.decode(cursor, "ledger", {}, TYPES)


def test_page_sizes_and_queries_are_bounded():
    assert checked_limit(100) == 100
    for bad in (0, 101, True, "20"):
        with pytest.raises(InvalidQuery):
            checked_limit(bad)  # type: ignore[arg-type]
    assert checked_query("  harry   poter ") == "harry poter"
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(InvalidQuery):
            checked_query(bad)


def test_what_a_people_query_is_and_which_words_narrow_it():
    assert kind_of("ada@example.org") == "email"
    assert kind_of("+44 (0)20 7946-0000") == "phone"
    assert kind_of("020") == "phone" and kind_of("20") == "name"
    assert kind_of("Zoë Quartz") == "name"
    assert fuzzy_words("Notes from the Silent River") == ["notes", "silent", "river"]
    assert fuzzy_words("of the") == ["of the"]
