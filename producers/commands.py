"""The message contract: every command upstream systems may publish.

A command is a small frozen pydantic model with an idempotency `key` and a `type`
tag. Producers validate before publishing; the worker validates the same body again,
because a message on the queue may come from anyone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from producers.errors import InvalidCommand

#: Room for an HTTP client's key (up to 255 characters, the HTTP intake's limit) in its
#: client's namespace: `@<client>/<key>` with a client name of up to 32 characters.
MAX_KEY_LENGTH = 300
_KEY_PATTERN = r"^[\x21-\x7e]+$"
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH, pattern=_KEY_PATTERN)
]
#: the highest unit price a product may have: 100,000,000.00
MAX_PRICE_CENTS = 100_000_000_00
_CODE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,63}")
_ORDER_NUMBER = re.compile(r"ORD-[0-9]{6,}")


def _upper_stripped(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _code(kind: str, example: str) -> Any:
    """An identifier people type (SKU, member number, barcode): case-insensitive,
    stored upper-case, refused with a message that says what it should look like."""

    def check(value: str) -> str:
        if not _CODE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a {kind} (like {example}: 1-64 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit)"
            )
        return value

    return Annotated[str, BeforeValidator(_upper_stripped), AfterValidator(check)]


def _check_order_number(value: str) -> str:
    if not _ORDER_NUMBER.fullmatch(value):
        raise ValueError(f"{value!r} is not an order number (like ORD-000042)")
    return value


Sku = _code("SKU", "MUG-1")
OrderNumber = Annotated[str, BeforeValidator(_upper_stripped), AfterValidator(_check_order_number)]
Quantity = Annotated[int, Field(gt=0, le=100_000, strict=True)]
CustomerRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE = re.compile(r"\+?[0-9()./\s-]{3,40}")


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address (like ada@example.org)")
    return value


def _check_phone(value: str) -> str:
    if not _PHONE.fullmatch(value) or sum(ch.isdigit() for ch in value) < 3:
        raise ValueError(
            f"{value!r} is not a phone number (digits, spaces, '+', '(', ')', '-', '.', '/'; "
            "like +44 20 7946 0000)"
        )
    return value


Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_check_email)
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=40), AfterValidator(_check_phone)
]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Command(BaseModel):
    """Base of every command: an idempotency key and nothing else shared."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    type: str
    key: IdempotencyKey

    #: Celery task name the command is sent to (the only coupling to the worker).
    task_name: ClassVar[str]
    #: Optional fields added after the command was first published. While unset they
    #: are left out of the canonical body and of the message: a payload published
    #: before they existed keeps its fingerprint (a redelivery is still a duplicate, not
    #: `idempotency_key_reused`), and a worker that predates them still accepts it.
    added_fields: ClassVar[frozenset[str]] = frozenset()

    def _without_unset_additions(self, data: dict[str, Any]) -> dict[str, Any]:
        for name in self.added_fields:
            if data.get(name) is None:
                data.pop(name, None)
        return data

    def body(self) -> dict[str, Any]:
        """The canonical body: every field but the key, JSON-ready."""
        return self._without_unset_additions(self.model_dump(mode="json", exclude={"key"}))

    def fingerprint(self) -> str:
        """SHA-256 of the canonical body; equal payloads give equal fingerprints."""
        return fingerprint_of(self.body())

    def message(self) -> dict[str, Any]:
        """The JSON object that travels on the queue."""
        return self._without_unset_additions(self.model_dump(mode="json"))


def fingerprint_of(body: Mapping[str, Any]) -> str:
    """Hash a JSON-ready mapping canonically (sorted keys, no insignificant spaces)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- catalogue and stock ------------------------------------------------------------------


class UpsertProduct(Command):
    """Create a product (with empty stock) or change its name and price."""

    task_name: ClassVar[str] = "orderq.orders.upsert_product"
    type: Literal["upsert_product"] = "upsert_product"
    sku: Sku
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    price_cents: Annotated[int, Field(ge=0, le=MAX_PRICE_CENTS, strict=True)]


class RestockProduct(Command):
    """Receive `qty` more units of a product into stock."""

    task_name: ClassVar[str] = "orderq.orders.restock_product"
    type: Literal["restock_product"] = "restock_product"
    sku: Sku
    qty: Quantity


# -- orders -----------------------------------------------------------------------------


class OrderLine(BaseModel):
    """One line of an order: a SKU and how many units."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Sku
    qty: Quantity


class CustomerDetails(BaseModel):
    """How to reach the customer (all optional); given ones replace what was stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: PersonName | None = None
    email: Email | None = None
    phone: Phone | None = None


class PlaceOrder(Command):
    """Reserve stock for every line and create the order, or reject it whole.

    `customer` (optional) carries the customer's contact details, kept in `customers`
    under `customer_ref` so operators can find the customer by name, e-mail or phone.
    """

    task_name: ClassVar[str] = "orderq.orders.place_order"
    added_fields: ClassVar[frozenset[str]] = frozenset({"customer"})
    type: Literal["place_order"] = "place_order"
    customer_ref: CustomerRef
    lines: Annotated[tuple[OrderLine, ...], Field(min_length=1, max_length=100)]
    customer: CustomerDetails | None = None

    @field_validator("lines")
    @classmethod
    def _one_line_per_sku(cls, lines: tuple[OrderLine, ...]) -> tuple[OrderLine, ...]:
        seen: set[str] = set()
        for line in lines:
            if line.sku in seen:
                raise ValueError(f"sku {line.sku} appears on more than one line")
            seen.add(line.sku)
        return lines


class ConfirmPayment(Command):
    """The order was paid: placed -> paid."""

    task_name: ClassVar[str] = "orderq.orders.confirm_payment"
    type: Literal["confirm_payment"] = "confirm_payment"
    order_number: OrderNumber


class ShipOrder(Command):
    """The order left the warehouse: paid -> shipped; reserved stock is consumed."""

    task_name: ClassVar[str] = "orderq.orders.ship_order"
    type: Literal["ship_order"] = "ship_order"
    order_number: OrderNumber


class CancelOrder(Command):
    """placed or paid -> cancelled; reserved stock is released.

    `reason="payment_expired"` is the system's own cancellation of an order left unpaid
    past the payment window (sent by maintenance with the key `expire:<order number>`):
    it applies only while the order is still `placed`, never to a paid one.
    """

    task_name: ClassVar[str] = "orderq.orders.cancel_order"
    type: Literal["cancel_order"] = "cancel_order"
    order_number: OrderNumber
    reason: Literal["requested", "payment_expired"] = "requested"


# -- library loans (identifiers are what a front desk can type: M-1001, W-42, 31234000123) --

MemberNumber = _code("member number", "M-1001")
WorkCode = _code("work code", "W-42")
Barcode = _code("barcode", "31234000123")
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class RegisterMember(Command):
    """Register a member, or replace an existing member's name, loan limit and status.

    `email` and `phone` are optional: given, they replace the stored ones; absent, the
    stored ones are kept (a re-registration from a system that never sent them does not
    wipe them).
    """

    task_name: ClassVar[str] = "orderq.loans.register_member"
    added_fields: ClassVar[frozenset[str]] = frozenset({"email", "phone"})
    type: Literal["register_member"] = "register_member"
    member: MemberNumber
    name: Text200
    loan_limit: Annotated[int, Field(ge=0, le=1000, strict=True)] = 5
    status: Literal["active", "suspended"] = "active"
    email: Email | None = None
    phone: Phone | None = None


class AddWork(Command):
    """Add a work to the catalogue, or replace its title and authors."""

    task_name: ClassVar[str] = "orderq.loans.add_work"
    type: Literal["add_work"] = "add_work"
    work: WorkCode
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    authors: Annotated[tuple[Text200, ...], Field(max_length=20)] = ()


class AddCopy(Command):
    """Add a physical copy of a work; it goes to the first waiting reservation, if any."""

    task_name: ClassVar[str] = "orderq.loans.add_copy"
    type: Literal["add_copy"] = "add_copy"
    work: WorkCode
    barcode: Barcode


class CheckoutCopy(Command):
    """Lend a copy to a member (fulfils the member's reservation if the copy is held)."""

    task_name: ClassVar[str] = "orderq.loans.checkout_copy"
    type: Literal["checkout_copy"] = "checkout_copy"
    member: MemberNumber
    barcode: Barcode


class ReturnCopy(Command):
    """Close the copy's active loan; the copy goes to the first waiting reservation."""

    task_name: ClassVar[str] = "orderq.loans.return_copy"
    type: Literal["return_copy"] = "return_copy"
    barcode: Barcode


class RenewLoan(Command):
    """Extend the member's active loan of a copy by one loan period."""

    task_name: ClassVar[str] = "orderq.loans.renew_loan"
    type: Literal["renew_loan"] = "renew_loan"
    member: MemberNumber
    barcode: Barcode


class PlaceReservation(Command):
    """Reserve a work: hold an available copy now, or join the work's queue."""

    task_name: ClassVar[str] = "orderq.loans.place_reservation"
    type: Literal["place_reservation"] = "place_reservation"
    member: MemberNumber
    work: WorkCode


class CancelReservation(Command):
    """Cancel the member's open reservation of a work; a held copy moves on."""

    task_name: ClassVar[str] = "orderq.loans.cancel_reservation"
    type: Literal["cancel_reservation"] = "cancel_reservation"
    member: MemberNumber
    work: WorkCode


# -- loan maintenance: sent by the loan sweeps with deterministic keys -------------------


def _in_utc(value: datetime) -> datetime:
    # one instant, one spelling: the fingerprint must not depend on the session time zone
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
RowId = Annotated[int, Field(gt=0, strict=True)]


class ExpireReservation(Command):
    """The hold of a `ready` reservation ran out: expire it, pass the copy on.

    Sent by the `expire_ready_reservations` sweep with the key
    `expire-reservation:<reservation id>:<ready_until in UTC>`. `ready_until` is the
    deadline the sweep saw. The command applies only while the reservation is still
    `ready` and its (current) deadline has passed; the copy then goes to the next
    queued reservation of the work, or back on the shelf.
    """

    task_name: ClassVar[str] = "orderq.loans.expire_reservation"
    type: Literal["expire_reservation"] = "expire_reservation"
    reservation_id: RowId
    ready_until: UtcDatetime


class MarkLoanOverdue(Command):
    """An active loan is past its due date: mark it overdue (it can no longer be renewed).

    Sent by the `mark_overdue_loans` sweep with the key `overdue:<loan id>:<due_date>`;
    `due_date` is the loan's due date (UTC) the sweep saw. A loan renewed or returned in
    the meantime is not marked.
    """

    task_name: ClassVar[str] = "orderq.loans.mark_loan_overdue"
    type: Literal["mark_loan_overdue"] = "mark_loan_overdue"
    loan_id: RowId
    due_date: date


COMMAND_CLASSES: tuple[type[Command], ...] = (
    UpsertProduct,
    RestockProduct,
    PlaceOrder,
    ConfirmPayment,
    ShipOrder,
    CancelOrder,
    RegisterMember,
    AddWork,
    AddCopy,
    CheckoutCopy,
    ReturnCopy,
    RenewLoan,
    PlaceReservation,
    CancelReservation,
    ExpireReservation,
    MarkLoanOverdue,
)
COMMANDS_BY_TYPE: dict[str, type[Command]] = {
    cls.model_fields["type"].default: cls for cls in COMMAND_CLASSES
}
COMMANDS_BY_TASK: dict[str, type[Command]] = {cls.task_name: cls for cls in COMMAND_CLASSES}


def readable_message(item: Mapping[str, Any]) -> str:
    """Pydantic's message without its "Value error, " prefix for our own validators,
    and in words where pydantic would quote a regular expression."""
    if item.get("type") == "string_pattern_mismatch" and (
        item.get("ctx", {}).get("pattern") == _KEY_PATTERN
    ):
        return (
            f"{item.get('input')!r} is not an idempotency key: printable ASCII, "
            "no spaces (like web-1001)"
        )
    return str(item["msg"]).removeprefix("Value error, ")


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad field, e.g. `lines.0.qty: Input should be greater than 0`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "command"
        parts.append(f"{where}: {readable_message(item)}")
    return "; ".join(parts)


def parse_command(message: Any, expected_type: str | None = None) -> Command:
    """Validate a decoded message into its command, or raise `InvalidCommand`.

    `expected_type` is the type the receiving task serves; a message whose `type`
    disagrees is refused rather than run by the wrong handler.
    """
    if not isinstance(message, Mapping):
        raise InvalidCommand(f"command: expected a JSON object, got {type(message).__name__}")
    key = message.get("key") if isinstance(message.get("key"), str) else None
    command_type = message.get("type")
    if command_type is None and expected_type is not None:
        message = {**message, "type": expected_type}
        command_type = expected_type
    if not isinstance(command_type, str) or command_type not in COMMANDS_BY_TYPE:
        known = ", ".join(sorted(COMMANDS_BY_TYPE))
        raise InvalidCommand(f"type: unknown command type {command_type!r} (known: {known})", key)
    if expected_type is not None and command_type != expected_type:
        raise InvalidCommand(f"type: {command_type!r} was sent to the {expected_type!r} task", key)
    try:
        return COMMANDS_BY_TYPE[command_type].model_validate(message)
    except ValidationError as error:
        raise InvalidCommand(describe_validation_error(error), key) from None
