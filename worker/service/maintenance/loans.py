"""Loan-side maintenance: expire `ready` reservations past their pickup deadline (the
copy goes to the next reservation in the queue) and mark loans overdue.

Both change loan rows, so both are command sweeps (see sweeps.py): a finder turns each
due row into a command with a deterministic key, run through the same runner as every
queued command, so each change happens exactly once however often the sweep runs.
The sweep machinery, advisory lock, batching, Celery task and beat entry are generic;
what the loans domain contributes is one `CommandSweep` per job, with the task names
and schedule settings below:

    CommandSweep(task="expire_ready_reservations",
                 find_due=<ready reservations past their deadline ->
                           ExpireReservation(key=f"expire-reservation:{id}", ...)>,
                 schedule_setting="schedule_expire_reservations_seconds")
    CommandSweep(task="mark_overdue_loans",
                 find_due=<active loans past due, not yet marked ->
                           MarkLoanOverdue(key=f"overdue:{loan_id}:{due_date}", ...)>,
                 schedule_setting="schedule_mark_overdue_loans_seconds")

Sweeps listed in `LOAN_SWEEPS` are registered as `orderq.maintenance.<task>` and
scheduled by beat; with none listed, no loan job is scheduled.
"""

from __future__ import annotations

from worker.service.maintenance.sweeps import CommandSweep

EXPIRE_READY_RESERVATIONS = "expire_ready_reservations"
MARK_OVERDUE_LOANS = "mark_overdue_loans"

LOAN_SWEEPS: tuple[CommandSweep, ...] = ()
