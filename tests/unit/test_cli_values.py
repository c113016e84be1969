"""Command-line value parsing: clear errors for bad input."""

from __future__ import annotations

import pytest

from orderq.cli.values import parse_line, parse_price


@pytest.mark.parametrize(("text", "cents"), [("12.50", 1250), ("0", 0), ("3", 300), ("0.01", 1)])
def test_prices(text, cents):
    assert parse_price(text) == cents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "zero or more"),
        ("1.005", "two decimal places"),
        ("abc", "not a number"),
        ("nan", "zero or more"),
    ],
)
def test_bad_prices(text, message):
    with pytest.raises(ValueError, match=message):
        parse_price(text)


def test_line():
    line = parse_line("mug-1:3")
    assert (line.sku, line.qty) == ("MUG-1", 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MUG", "must look like SKU:QTY"),
        ("MUG:", "must look like SKU:QTY"),
        ("MUG:two", "not a whole number"),
        ("MUG:0", "greater than 0"),
        ("bad sku:1", "sku"),
    ],
)
def test_bad_lines(text, message):
    with pytest.raises(ValueError, match=message):
        parse_line(text)
