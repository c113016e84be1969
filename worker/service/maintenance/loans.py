"""Loan-side maintenance: expire `ready` reservations past their pickup deadline (the
copy goes to the next reservation in the queue) and mark loans overdue.

Both change loan rows, so both are command sweeps (see sweeps.py): a finder turns each
due row into a command with a deterministic key, run through the same runner as every
queued command, so each change happens exactly once however often the sweep runs.

The keys name the row *and* the deadline the finder saw:

- `expire-reservation:<reservation id>:<ready_until, UTC>` — if the deadline were
  extended after a run had rejected the expiry (`hold_not_expired`), a key without
  the deadline would replay that rejection forever once the new deadline passed;
- `overdue:<loan id>:<due date, UTC>` — a loan renewed before the mark applied gets
  `loan_not_overdue` for the old date, and its new due date a key of its own.

Sweeps listed in `LOAN_SWEEPS` are registered as `orderq.maintenance.<task>` and
scheduled by beat (intervals: `schedule_expire_reservations_seconds`,
`schedule_mark_overdue_loans_seconds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection

from producers.commands import ExpireReservation, MarkLoanOverdue
from worker.adapters.due_rows import expired_holds, unmarked_overdue_loans
from worker.service.maintenance.sweeps import CommandSweep, DueCommand
from worker.settings import WorkerSettings

EXPIRE_READY_RESERVATIONS = "expire_ready_reservations"
MARK_OVERDUE_LOANS = "mark_overdue_loans"


def reservation_expiry_key(reservation_id: int, ready_until: datetime) -> str:
    """The one key the system uses to expire this reservation's hold at this deadline."""
    deadline = ready_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"expire-reservation:{reservation_id}:{deadline}"


def overdue_key(loan_id: int, due_date: date) -> str:
    """The one key the system uses to mark this loan overdue for this due date."""
    return f"overdue:{loan_id}:{due_date.isoformat()}"


def expiry_command(reservation_id: int, ready_until: datetime) -> ExpireReservation:
    return ExpireReservation(
        key=reservation_expiry_key(reservation_id, ready_until),
        reservation_id=reservation_id,
        ready_until=ready_until,
    )


def overdue_command(loan_id: int, due_at: datetime) -> MarkLoanOverdue:
    due_date = due_at.astimezone(UTC).date()
    return MarkLoanOverdue(key=overdue_key(loan_id, due_date), loan_id=loan_id, due_date=due_date)


def _due_expiries(
    connection: Connection, settings: WorkerSettings, after: tuple[Any, ...] | None, limit: int
) -> Sequence[DueCommand]:
    return [
        ((ready_until, id_), expiry_command(id_, ready_until))
        for ready_until, id_ in expired_holds(connection, after, limit)
    ]


def _due_overdue_marks(
    connection: Connection, settings: WorkerSettings, after: tuple[Any, ...] | None, limit: int
) -> Sequence[DueCommand]:
    return [
        ((due_at, id_), overdue_command(id_, due_at))
        for due_at, id_ in unmarked_overdue_loans(connection, after, limit)
    ]


EXPIRE_READY_RESERVATIONS_SWEEP = CommandSweep(
    task=EXPIRE_READY_RESERVATIONS,
    find_due=_due_expiries,
    schedule_setting="schedule_expire_reservations_seconds",
    summary="expire holds past their pickup deadline; the copy goes to the next in the queue",
)
MARK_OVERDUE_LOANS_SWEEP = CommandSweep(
    task=MARK_OVERDUE_LOANS,
    find_due=_due_overdue_marks,
    schedule_setting="schedule_mark_overdue_loans_seconds",
    summary="mark active loans past their due date overdue (no more renewals)",
)

LOAN_SWEEPS: tuple[CommandSweep, ...] = (
    EXPIRE_READY_RESERVATIONS_SWEEP,
    MARK_OVERDUE_LOANS_SWEEP,
)
