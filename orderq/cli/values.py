"""Parsing of command-line values into command fields, with errors that name the flag."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from producers.commands import OrderLine, readable_message

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
}


def parse_price(value: str) -> int:
    """'12.50' -> 1250 cents; refuses negatives, fractions of a cent and non-numbers."""
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"--price {value!r} is not a number (expected e.g. 12.50)") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"--price {value!r} must be zero or more")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"--price {value!r} has more than two decimal places")
    return int(cents)


def parse_line(value: str) -> OrderLine:
    """'MUG-1:2' -> OrderLine(sku='MUG-1', qty=2)."""
    sku, sep, qty = value.rpartition(":")
    if not sep or not sku or not qty:
        raise ValueError(f"--line {value!r} must look like SKU:QTY (e.g. MUG-1:2)")
    try:
        quantity = int(qty)
    except ValueError:
        raise ValueError(f"--line {value!r}: quantity {qty!r} is not a whole number") from None
    try:
        return OrderLine(sku=sku, qty=quantity)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {readable_message(e)}" for e in error.errors()
        )
        raise ValueError(f"--line {value!r}: {problems}") from None


def describe_for_flags(error: ValidationError) -> str:
    """A pydantic error rewritten in terms of the flags the user typed."""
    parts = []
    for item in error.errors():
        location = [str(p) for p in item["loc"]]
        flag = FLAG_FOR_FIELD.get(location[0], location[0]) if location else "command"
        if location[:1] == ["lines"] and len(location) > 1 and location[1].isdigit():
            flag = f"--line #{int(location[1]) + 1}" + (
                f" {location[2]}" if len(location) > 2 else ""
            )
        parts.append(f"{flag}: {readable_message(item)}")
    return "; ".join(parts)


def parse_whole_number(flag: str, value: str) -> int:
    """'5' -> 5, with an error naming the flag (typer's own message is a multi-line box)."""
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"{flag} {value!r} is not a whole number") from None
