"""The HTTP intake's request parsing, without a server: keys, Prefer, bodies."""

from __future__ import annotations

import pytest

from orderq.http.body import parse_json_object
from orderq.http.idempotency import (
    BadIdempotencyKey,
    client_key,
    parse_idempotency_key,
    requested_wait,
    scoped_key,
)
from orderq.http.problems import Problem


@pytest.mark.parametrize(
    ("header", "key"),
    [("k-1", "k-1"), ('"k-1"', "k-1"), ('"a\\"b"', 'a"b'), ('"a\\\\b"', "a\\b"), (" k ", "k")],
)
def test_keys_bare_or_as_structured_field_strings(header, key):
    assert parse_idempotency_key(header) == key


@pytest.mark.parametrize("header", [None, "", '""', "a b", "ключ", "x" * 256, '"a\\nb"', '"a"b"'])
def test_unusable_keys_are_refused(header):
    with pytest.raises(BadIdempotencyKey):
        parse_idempotency_key(header)


def test_a_clients_keys_live_in_its_own_namespace():
    assert scoped_key("shop", "web-1") == "@shop/web-1" != scoped_key("desk", "web-1")
    assert client_key("shop", scoped_key("shop", "a/b")) == "a/b"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ([], 0),
        (["wait=5"], 5),
        (["respond-async, wait=10"], 10),
        (["handling=lenient", "Wait = 3"], 3),
        (["wait=999"], 30),  # capped
        (["wait=soon", "wait=-1", "wait=1.5"], 0),  # malformed: ignored
    ],
)
def test_prefer_wait(headers, seconds):
    assert requested_wait(headers, cap=30) == seconds


def test_bodies_are_objects_within_depth_and_valid_unicode():
    assert parse_json_object(b"", 16) == {}
    assert parse_json_object(b'{"a": [1, {"b": 2}]}', 3) == {"a": [1, {"b": 2}]}
    for raw, status in [
        (b'{"a": [1, {"b": 2}]}', 400),  # depth 3 with a limit of 2
        (b"[" * 100_000 + b"]" * 100_000, 400),  # deeper than the parser's recursion
        (b'{"a": "\\udc00"}', 400),
        (b"\xff\xfe", 400),
        (b"[]", 422),
    ]:
        with pytest.raises(Problem) as raised:
            parse_json_object(raw, 2)
        assert raised.value.status == status, raw[:20]
