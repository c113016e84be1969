"""Command-line value parsing: clear errors for bad input, starting with the value."""

from __future__ import annotations

import pytest

from orderq.cli.values import (
    money,
    parse_line,
    parse_order_number,
    parse_price,
    seconds,
    whole_number,
)
from producers.commands import MAX_PRICE_CENTS


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12.50", 1250), ("0", 0), ("3", 300), ("0.01", 1), (" 7.5 ", 750), ("100000000", 10**10)],
)
def test_prices(text, cents):
    assert parse_price(text) == cents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "'-1' must be zero or more"),
        ("1.005", "'1.005' has more than two decimal places"),
        ("abc", "'abc' is not a number (expected e.g. 12.50)"),
        ("12,50", "'12,50' is not a number"),
        ("NaN", "'NaN' is not a number"),
        ("nan", "'nan' is not a number"),
        ("-Infinity", "'-Infinity' is not a number"),
        ("inf", "'inf' is not a number"),
    ],
)
def test_bad_prices(text, message):
    with pytest.raises(ValueError) as refused:
        parse_price(text)

    assert str(refused.value).startswith(message)


def test_price_limit_is_said_in_the_unit_the_user_typed():
    assert parse_price("100000000.00") == MAX_PRICE_CENTS

    with pytest.raises(ValueError) as refused:
        parse_price("100000000.01")

    assert str(refused.value) == "'100000000.01' is over the limit: at most 100,000,000.00"


def test_money():
    assert (money(0), money(5), money(123456789)) == ("0.00", "0.05", "1,234,567.89")


def test_line():
    line = parse_line("mug-1:3")
    assert (line.sku, line.qty) == ("MUG-1", 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MUG", "'MUG' must look like SKU:QTY"),
        ("MUG:", "'MUG:' must look like SKU:QTY"),
        ("MUG:two", "'MUG:two': quantity 'two' is not a whole number"),
        ("MUG:0", "greater than 0"),
        ("bad sku:1", "sku"),
    ],
)
def test_bad_lines(text, message):
    with pytest.raises(ValueError, match=message):
        parse_line(text)


def test_order_numbers():
    assert parse_order_number(" ord-000042 ") == "ORD-000042"
    with pytest.raises(ValueError, match=r"'42' is not an order number \(like ORD-000042\)"):
        parse_order_number("42")


@pytest.mark.parametrize(
    ("parser", "text", "message"),
    [
        (whole_number(), "abc", "'abc' is not a whole number"),
        (whole_number(), "2.5", "'2.5' is not a whole number"),
        (whole_number(1, 500), "0", "'0' must be between 1 and 500"),
        (whole_number(1, 500), "501", "'501' must be between 1 and 500"),
        (whole_number(1), "-3", "'-3' must be at least 1"),
        (seconds(), "soon", "'soon' is not a number of seconds (e.g. 2.5)"),
        (seconds(), "nan", "'nan' is not a number of seconds (e.g. 2.5)"),
        (seconds(), "inf", "'inf' is not a number of seconds (e.g. 2.5)"),
        (seconds(), "-1", "'-1' must be 0 or more"),
        (seconds(0.1, 60), "61", "'61' must be between 0.1 and 60"),
    ],
)
def test_numbers_are_refused_with_the_value_first(parser, text, message):
    with pytest.raises(ValueError) as refused:
        parser(text)

    assert str(refused.value) == message


def test_numbers_and_defaults_pass_through():
    assert whole_number(1, 500)(" 20 ") == 20
    assert whole_number(1, 500)(20) == 20  # typer hands defaults over as they are
    assert seconds()("2.5") == 2.5
    assert seconds()(0) == 0.0
