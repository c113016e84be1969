"""Library fixtures: members, works and copies with random identifiers, and row readers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from producers.commands import AddCopy, AddWork, RegisterMember
from tests.support.commands import run
from tests.support.ids import unique
from worker.service.runner import CommandRunner


def new_member(runner: CommandRunner, loan_limit: int = 5, status: str = "active") -> str:
    """Register a member; return the member number."""
    number = unique("M")
    command = RegisterMember(
        key=unique("reg"), member=number, name="Reader", loan_limit=loan_limit, status=status
    )
    assert run(runner, command).status == "succeeded"
    return number


def new_work(runner: CommandRunner, copies: int = 1) -> tuple[str, list[str]]:
    """Catalogue a work with `copies` copies; return its code and the copies' barcodes."""
    code = unique("W")
    assert run(runner, AddWork(key=unique("work"), work=code, title="A Book")).status == "succeeded"
    barcodes = [unique("C") for _ in range(copies)]
    for barcode in barcodes:
        outcome = run(runner, AddCopy(key=unique("copy"), work=code, barcode=barcode))
        assert outcome.status == "succeeded"
    return code, barcodes


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(sql), params)]


def loans_of_copy(engine: Engine, barcode: str) -> list[dict[str, Any]]:
    """Every loan of a copy, oldest first, with the borrower's member number."""
    return rows(
        engine,
        """
        SELECT l.id, m.member_number AS member, l.checked_out_at, l.due_at, l.returned_at,
               l.renewals, l.version
        FROM loans l JOIN copies c ON c.id = l.copy_id JOIN members m ON m.id = l.member_id
        WHERE c.barcode = :barcode ORDER BY l.id
        """,
        barcode=barcode,
    )


def copy_status(engine: Engine, barcode: str) -> str:
    return rows(engine, "SELECT status FROM copies WHERE barcode = :b", b=barcode)[0]["status"]


def reservations_of(engine: Engine, work: str) -> list[dict[str, Any]]:
    """A work's reservations in queue order: member, status, held copy, deadline."""
    return rows(
        engine,
        """
        SELECT m.member_number AS member, r.status, c.barcode, r.ready_until, r.updated_at
        FROM reservations r JOIN works w ON w.id = r.work_id
        JOIN members m ON m.id = r.member_id LEFT JOIN copies c ON c.id = r.copy_id
        WHERE w.work_code = :work ORDER BY r.queued_at, r.id
        """,
        work=work,
    )
