"""Parsing of command-line values, with errors that say what is wrong with the value.

The parsers are given to typer (`typer.Option(parser=…)`): a `ValueError` they raise
becomes one line through `orderq.cli.errors`, prefixed with the flag the user typed,
e.g. `error: --qty 'abc' is not a whole number`. Each message starts with the value.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import typer
from pydantic import TypeAdapter, ValidationError

from producers.commands import (
    COMMANDS_BY_TYPE,
    MAX_PRICE_CENTS,
    Email,
    OrderLine,
    OrderNumber,
    PersonName,
    Phone,
    readable_message,
)

FLAG_FOR_FIELD = {
    "key": "--key",
    "sku": "--sku",
    "name": "--name",
    "price_cents": "--price",
    "qty": "--qty",
    "customer_ref": "--customer",
    "lines": "--line",
    "order_number": "--order",
    # library loans
    "member": "--member",
    "work": "--work",
    "barcode": "--barcode",
    "title": "--title",
    "authors": "--author",
    "loan_limit": "--loan-limit",
    "status": "--status",
    "email": "--email",
    "phone": "--phone",
    # place_order's `customer` object: its fields are --customer-name/-email/-phone
    "customer": "--customer",
}


def money(cents: int) -> str:
    """1250 -> '12.50', with thousands separators."""
    return f"{Decimal(cents) / 100:,.2f}"


def parse_price(value: Any) -> int:
    """'12.50' -> 1250 cents; refuses non-numbers, negatives, fractions of a cent and
    prices over the limit (said in the unit the user typed)."""
    if isinstance(value, int):
        return value
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number (expected e.g. 12.50)") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a number (expected e.g. 12.50)")
    if amount < 0:
        raise ValueError(f"{value!r} must be zero or more")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{value!r} has more than two decimal places")
    if cents > MAX_PRICE_CENTS:
        raise ValueError(f"{value!r} is over the limit: at most {money(MAX_PRICE_CENTS)}")
    return int(cents)


def parse_line(value: Any) -> OrderLine:
    """'MUG-1:2' -> OrderLine(sku='MUG-1', qty=2)."""
    if isinstance(value, OrderLine):
        return value
    sku, sep, qty = str(value).rpartition(":")
    if not sep or not sku or not qty:
        raise ValueError(f"{value!r} must look like SKU:QTY (e.g. MUG-1:2)")
    try:
        quantity = int(qty)
    except ValueError:
        raise ValueError(f"{value!r}: quantity {qty!r} is not a whole number") from None
    try:
        return OrderLine(sku=sku, qty=quantity)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {readable_message(e)}" for e in error.errors()
        )
        raise ValueError(f"{value!r}: {problems}") from None


def _contract_value(kind: Any) -> Callable[[Any], str]:
    """A parser checking a value against a type of the message contract, so the flag
    refuses what the command would (in the contract's own words)."""
    adapter: TypeAdapter[str] = TypeAdapter(kind)

    def parse(value: Any) -> str:
        try:
            return adapter.validate_python(value)
        except ValidationError as error:
            raise ValueError(readable_message(error.errors()[0])) from None

    return parse


#: 'ord-000042' -> 'ORD-000042', else "'42' is not an order number (like …)"
parse_order_number = _contract_value(OrderNumber)
#: 'ada@example.org', else "'ada' is not an e-mail address (like ada@example.org)"
parse_email = _contract_value(Email)
#: '+44 20 7946 0000' as typed, else "'call me' is not a phone number (digits, …)"
parse_phone = _contract_value(Phone)
#: a person's name: 1-200 characters once trimmed
parse_person_name = _contract_value(PersonName)


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return "0 or more" if minimum == 0 else f"at least {minimum:g}"
    return f"at most {maximum:g}"


def _within(value: Any, number: float, minimum: float | None, maximum: float | None) -> None:
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{value!r} must be {_bounds(minimum, maximum)}")


def whole_number(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    """A parser for an integer option: '5' -> 5, else "'abc' is not a whole number"."""

    def parse(value: Any) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a whole number") from None
        _within(value, number, minimum, maximum)
        return number

    return parse


def decimal_number(
    minimum: float | None = None, maximum: float | None = None, *, unit: str = ""
) -> Callable[[Any], float]:
    """A parser for a finite decimal option: '2.5' -> 2.5, else "'soon' is not a number
    [of <unit>] (e.g. 2.5)"."""
    what = f"a number of {unit}" if unit else "a number"

    def parse(value: Any) -> float:
        if isinstance(value, int | float):
            number = float(value)
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not {what} (e.g. 2.5)")
        _within(value, number, minimum, maximum)
        return number

    return parse


def seconds(minimum: float | None = 0, maximum: float | None = None) -> Callable[[Any], float]:
    """A parser for a duration option: '2.5' -> 2.5, else "'soon' is not a number of
    seconds"."""
    return decimal_number(minimum, maximum, unit="seconds")


def wait_option(help: str) -> Any:
    """`--wait SECONDS` (0 or more): how long a command waits for an outcome."""
    return typer.Option("--wait", parser=seconds(0), metavar="SECONDS", help=help)


def parse_command_type(value: Any) -> str:
    """'place_order' as it is, else "'teleport' is not a command type (known: …)"."""
    if value not in COMMANDS_BY_TYPE:
        raise ValueError(
            f"{value!r} is not a command type (known: {', '.join(sorted(COMMANDS_BY_TYPE))})"
        )
    return str(value)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(value: Any) -> str:
    """'info' -> 'INFO', else "'loud' is not a log level (DEBUG, INFO, …)"."""
    level = str(value).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{value!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return level


def flag_message(flag: str, message: str) -> str:
    """`--qty 'abc' is not a whole number`: a message that starts with the value follows
    the flag directly; any other (`Input should be greater than 0`) after a colon."""
    joiner = " " if message.startswith(("'", '"')) else ": "
    return f"{flag}{joiner}{message}"


def describe_for_flags(error: ValidationError) -> str:
    """A pydantic error rewritten in terms of the flags the user typed."""
    parts = []
    for item in error.errors():
        location = [str(p) for p in item["loc"]]
        flag = FLAG_FOR_FIELD.get(location[0], location[0]) if location else "command"
        if location[:1] == ["customer"] and len(location) > 1:
            flag = f"--customer-{location[1]}"
        if location[:1] == ["lines"] and len(location) > 1 and location[1].isdigit():
            flag = f"--line #{int(location[1]) + 1}" + (
                f" {location[2]}" if len(location) > 2 else ""
            )
        parts.append(flag_message(flag, readable_message(item)))
    return "; ".join(parts)
