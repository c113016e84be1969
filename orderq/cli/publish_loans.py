"""`orderq publish …` subcommands for library loans (registered on the publish group).

Identifiers are what a front desk types: member numbers (M-1001), work codes (W-42 or
an ISBN), copy barcodes. Every value is validated before anything is published.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orderq.cli.publish import (
    KeyOption,
    build_command,
    contact_option,
    publish_app,
    send_command,
)
from orderq.cli.values import parse_email, parse_phone, whole_number
from producers.commands import (
    AddCopy,
    AddWork,
    CancelReservation,
    CheckoutCopy,
    PlaceReservation,
    RegisterMember,
    RenewLoan,
    ReturnCopy,
)

MemberOption = Annotated[
    str, typer.Option("--member", metavar="MEMBER", help="Member number, e.g. M-1001.")
]
WorkOption = Annotated[
    str, typer.Option("--work", metavar="WORK", help="Work code, e.g. W-42 or an ISBN.")
]
EmailOption = contact_option(
    "--email",
    parse_email,
    "EMAIL",
    "The member's e-mail address (search finds it by prefix).",
)
PhoneOption = contact_option(
    "--phone",
    parse_phone,
    "PHONE",
    "The member's phone number, as they give it (search finds any spelling).",
)
BarcodeOption = Annotated[
    str, typer.Option("--barcode", metavar="BARCODE", help="Copy barcode, e.g. 31234000123.")
]


@publish_app.command("register-member")
def register_member(
    key: KeyOption,
    member: MemberOption,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="The member's name.")],
    loan_limit: Annotated[
        int,
        typer.Option(
            "--loan-limit", parser=whole_number(), metavar="N", help="Most loans at once (0-1000)."
        ),
    ] = 5,
    status: Annotated[
        str,
        typer.Option(
            "--status", metavar="active|suspended", help="A suspended member cannot borrow."
        ),
    ] = "active",
    email: EmailOption = None,
    phone: PhoneOption = None,
) -> None:
    """Register a member, or replace a member's name, loan limit and status (and e-mail
    and phone when given: left out, the stored ones are kept)."""
    send_command(
        build_command(
            RegisterMember,
            key=key,
            member=member,
            name=name,
            loan_limit=loan_limit,
            status=status,
            email=email,
            phone=phone,
        )
    )


@publish_app.command("add-work")
def add_work(
    key: KeyOption,
    work: WorkOption,
    title: Annotated[str, typer.Option("--title", metavar="TITLE", help="The work's title.")],
    author: Annotated[
        list[str] | None,
        typer.Option("--author", metavar="AUTHOR", help="An author; repeat for more."),
    ] = None,
) -> None:
    """Add a work to the catalogue, or replace its title and authors."""
    send_command(
        build_command(AddWork, key=key, work=work, title=title, authors=tuple(author or ()))
    )


@publish_app.command("add-copy")
def add_copy(key: KeyOption, work: WorkOption, barcode: BarcodeOption) -> None:
    """Add a copy of a work (it goes straight to the first waiting reservation, if any)."""
    send_command(build_command(AddCopy, key=key, work=work, barcode=barcode))


@publish_app.command("checkout")
def checkout(key: KeyOption, member: MemberOption, barcode: BarcodeOption) -> None:
    """Lend a copy to a member."""
    send_command(build_command(CheckoutCopy, key=key, member=member, barcode=barcode))


@publish_app.command("return")
def return_copy(key: KeyOption, barcode: BarcodeOption) -> None:
    """Return a copy; it is held for the first waiting reservation, if any."""
    send_command(build_command(ReturnCopy, key=key, barcode=barcode))


@publish_app.command("renew")
def renew(key: KeyOption, member: MemberOption, barcode: BarcodeOption) -> None:
    """Renew a member's loan of a copy by one loan period."""
    send_command(build_command(RenewLoan, key=key, member=member, barcode=barcode))


@publish_app.command("reserve")
def reserve(key: KeyOption, member: MemberOption, work: WorkOption) -> None:
    """Reserve a work: hold an available copy now, or join the work's queue."""
    send_command(build_command(PlaceReservation, key=key, member=member, work=work))


@publish_app.command("cancel-reservation")
def cancel_reservation(key: KeyOption, member: MemberOption, work: WorkOption) -> None:
    """Cancel a member's open reservation of a work."""
    send_command(build_command(CancelReservation, key=key, member=member, work=work))
