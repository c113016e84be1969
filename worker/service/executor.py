"""One command, one transaction: claim the key, run the handler, store the outcome.

    claim key in ledger ──(already there)──► replay stored outcome (or refuse reuse)
          │
    handler ─┬─ result ─► write outcome to the ledger row ─► COMMIT (the only commit)
             │
             └─ Rejected (or the key's business row already exists) ─► ROLLBACK, then
                a second transaction: claim again ─► (a concurrent delivery decided
                meanwhile? replay it) ─► recover or write the rejection ─► COMMIT

A rejection throws away everything the handler wrote by rolling back the whole
transaction rather than a savepoint: the common path (success) then pays no
SAVEPOINT/RELEASE round trips, and only the rarer rejected path pays a second short
transaction. The decision was taken under the first transaction's locks; recording it
a moment later is a valid order of events, and the ledger's unique key still lets
only one outcome per key be stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from producers.command_log import LedgerEntry, LedgerStatus
from worker.adapters.errors import TransientError, is_business_key_duplicate
from worker.domain.errors import IdempotencyKeyReused, Rejected
from worker.service.context import CommandContext
from worker.service.outcome import Outcome
from worker.service.unit_of_work import UnitOfWork

Action = Callable[[UnitOfWork], dict[str, Any]]


def execute(
    new_uow: Callable[[], UnitOfWork],
    ctx: CommandContext,
    command_type: str,
    fingerprint: str,
    action: Action,
    recover: Action | None = None,
) -> Outcome:
    """Run `action` exactly once for `ctx.key`, or replay the outcome already stored.

    `recover` answers a delivery whose ledger row is gone (purged after the retention
    window) but whose business row exists: the action's insert hits the business
    unique key, or the rules reject the command because its own earlier effect is in
    the way (the copy is on loan — by this key's loan); `recover` reads the existing
    row in a fresh transaction. It raises `LookupError` when there is none, and may
    raise `Rejected` (a reused key).
    """
    key = ctx.key
    with new_uow() as uow:
        existing = uow.ledger.claim(key, command_type, fingerprint)
        if existing is not None:
            return replay(existing, fingerprint)
        ctx.failpoint("after_claim")
        try:
            outcome = Outcome.succeeded(key, action(uow))
        except Rejected as rejection:
            refusal: Rejected | None = rejection
        except Exception as error:
            if recover is None or not is_business_key_duplicate(error):
                raise
            refusal, duplicate = None, error
        else:
            return _commit(uow, ctx, outcome)
    # The first transaction rolled back with everything the handler wrote.
    with new_uow() as uow:
        existing = uow.ledger.claim(key, command_type, fingerprint)
        if existing is not None:
            return replay(existing, fingerprint)
        outcome = _recovered(key, recover, uow)
        if outcome is None:
            if refusal is None:
                raise duplicate from None  # not this key's row: let the taxonomy decide
            outcome = _rejected(key, refusal)
        return _commit(uow, ctx, outcome)


def _commit(uow: UnitOfWork, ctx: CommandContext, outcome: Outcome) -> Outcome:
    uow.ledger.record_outcome(
        ctx.key, outcome.status, outcome.ledger_result(), outcome.reason, ctx.attempt
    )
    uow.flush()
    ctx.failpoint("before_commit")
    uow.commit()
    return outcome


def _rejected(key: str, rejection: Rejected) -> Outcome:
    return Outcome.rejected(key, rejection.reason, rejection.message, rejection.details)


def _recovered(
    key: str, recover: Callable[[UnitOfWork], dict[str, Any]] | None, uow: UnitOfWork
) -> Outcome | None:
    """The outcome read back from the key's business row, or None if it has none."""
    if recover is None:
        return None
    try:
        return Outcome.succeeded(key, recover(uow))
    except LookupError:
        return None
    except Rejected as refusal:
        return _rejected(key, refusal)


def replay(entry: LedgerEntry, fingerprint: str) -> Outcome:
    """The stored outcome for a repeated key, or a refusal if the payload differs."""
    if entry.fingerprint != fingerprint:
        refusal = IdempotencyKeyReused(
            f"key {entry.key} was already used for a different {entry.command_type} command",
            original_type=entry.command_type,
        )
        return Outcome.rejected(entry.key, refusal.reason, refusal.message, refusal.details)
    if entry.status == LedgerStatus.SUCCEEDED:
        return Outcome.succeeded(entry.key, entry.result or {}).as_replay()
    if entry.status == LedgerStatus.REJECTED:
        stored = entry.result or {}
        return Outcome.rejected(
            entry.key, entry.reason or "rejected", stored.get("message", ""), stored.get("details")
        ).as_replay()
    # Only reachable if a transaction committed a claim without an outcome.
    raise TransientError(f"ledger row for {entry.key} has no outcome yet")
