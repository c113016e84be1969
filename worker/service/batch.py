"""Many deliveries, one transaction: group commit for the command queue.

A pool process gets a batch of messages (worker/entrypoints/batching.py) and decides
them here, keeping every guarantee of `CommandRunner.run`:

    count the attempts of all distinct keys    one statement, asynchronous commit
          │   (decided keys: replay; dead letters: their failure; no attempt used)
    BEGIN ─ claim all keys (key order) ─ lock every row the commands name (lock order)
          │
          ├─ per command: SAVEPOINT ─ handler ─┬─ result    ─► outcome
          │                                    ├─ Rejected  ─► ROLLBACK TO SAVEPOINT,
          │                                    │               outcome `rejected`
          │                                    └─ error     ─► ROLLBACK TO SAVEPOINT,
          │                                                    claim removed
    record every outcome ─ COMMIT (one WAL flush for the batch)
          │
    after the commit: a command whose savepoint failed runs again alone, in its own
    transaction, as the same attempt (`CommandRunner.run_counted`); a second delivery
    of a key in the same batch runs after it, and so replays its outcome.

A batch that fails as a whole (the connection drops, a lock wait times out, the commit
fails) is rolled back and every command runs alone instead, as the same attempt:
nothing is decided twice and no attempt is counted twice. A process killed mid-batch
commits nothing; every message of the batch is redelivered (the consumer rejects them
back to the queue) and decided once.

Invalid messages and other shapes than one JSON object take the single path: they are
rare, and their answer is stored by the same code as without batching.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from producers.command_log import Claim
from producers.commands import Command, InvalidCommand
from worker.adapters import tracing
from worker.adapters.batch_locks import lock_plan, lock_up_front
from worker.adapters.errors import is_business_key_duplicate
from worker.domain.errors import Rejected
from worker.service.context import CommandContext
from worker.service.executor import replay
from worker.service.handlers import handler_for, recovery_for
from worker.service.observer import Delivery
from worker.service.outcome import Outcome
from worker.service.runner import CommandRunner, Result
from worker.service.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchItem:
    """One delivery of a batch: the task's command type and the message's arguments."""

    command_type: str
    args: Sequence[Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    #: the trace context the message carried (W3C headers), if any
    trace: Mapping[str, Any] | None = None


@dataclass
class _Pending:
    """A command of the batch that runs in the batch's transaction."""

    index: int
    command: Command
    ctx: CommandContext
    delivery: Delivery
    retries: int
    #: the key, type and fingerprint it is counted and claimed under (computed once)
    claim: Claim
    trace: Mapping[str, Any] | None = None
    outcome: Outcome | None = None
    error: Exception | None = None
    #: the error undid the whole batch, not just this command's savepoint
    whole_batch: bool = False


class BatchRunner:
    """Decides a batch of deliveries in one transaction (see the module docstring)."""

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    def run(self, items: Sequence[BatchItem]) -> list[Result]:
        """One result per item, in order: an outcome, or a decision to retry later."""
        results: list[Result | None] = [None] * len(items)
        primaries: dict[str, tuple[int, Command]] = {}
        later: list[int] = []  # run alone after the batch: odd shapes, invalid, repeats
        for index, item in enumerate(items):
            command = self._command(item)
            if command is None or command.key in primaries:
                later.append(index)
            else:
                primaries[command.key] = (index, command)
        if primaries:
            self._run_primaries(items, list(primaries.values()), results)
        for index in later:
            item = items[index]
            results[index] = self.runner.run_arguments(
                item.args, item.kwargs, item.command_type, item.retries
            )
        return [result for result in results if result is not None]

    def _command(self, item: BatchItem) -> Command | None:
        if len(item.args) != 1 or item.kwargs:
            return None
        try:
            return self.runner.parse(item.args[0], item.command_type)
        except InvalidCommand:
            return None

    def _run_primaries(
        self,
        items: Sequence[BatchItem],
        primaries: list[tuple[int, Command]],
        results: list[Result | None],
    ) -> None:
        claims = [
            Claim(command.key, command.type, command.fingerprint(), command.message())
            for _, command in primaries
        ]
        try:
            attempts = self.runner.deliveries.record_attempts(claims)
        except Exception:
            log.warning("could not count a batch's attempts; running its commands alone")
            for index, _ in primaries:
                item = items[index]
                results[index] = self.runner.run(item.args[0], item.command_type, item.retries)
            return
        pending: list[_Pending] = []
        for (index, command), claim in zip(primaries, claims, strict=True):
            delivery = Delivery(command.type)
            retries = items[index].retries
            settled = self.runner.settle_counted(command, attempts[command.key], delivery, retries)
            if isinstance(settled, CommandContext):
                trace = items[index].trace
                pending.append(_Pending(index, command, settled, delivery, retries, claim, trace))
            else:
                results[index] = self.runner.observed(delivery, settled)
        if pending:
            self._decide(pending)
            for entry in pending:
                results[entry.index] = self._finish(entry)

    def _decide(self, pending: list[_Pending]) -> None:
        """Run `pending` in one transaction; on any failure of the whole, decide none."""
        try:
            with self.runner.new_uow() as batch:
                taken = batch.ledger.claim_many([p.claim for p in pending])
                batch.held_products = lock_up_front(
                    batch.sql, lock_plan(p.command for p in pending)
                )
                for entry in pending:
                    existing = taken[entry.command.key]
                    if existing is not None:
                        entry.outcome = replay(existing, entry.claim.fingerprint)
                    else:
                        with tracing.command_in_batch(
                            entry.trace, entry.command.task_name, entry.command.key, len(pending)
                        ):
                            self._run_one(batch, entry)
                decided = [
                    p for p in pending if p.outcome is not None and taken[p.command.key] is None
                ]
                with batch.batched():  # one round trip for all the outcomes
                    for entry in decided:
                        assert entry.outcome is not None
                        batch.ledger.record_outcome(
                            entry.command.key,
                            entry.outcome.status,
                            entry.outcome.ledger_result(),
                            entry.outcome.reason,
                            entry.ctx.attempt,
                        )
                for entry in decided:
                    entry.ctx.failpoint("before_commit")
                batch.commit()
        except Exception as error:
            log.warning(
                "a batch of %s commands failed as a whole (%s: %s); running them alone",
                len(pending),
                type(error).__name__,
                error,
            )
            for entry in pending:
                entry.outcome, entry.error, entry.whole_batch = None, error, True

    def _run_one(self, batch: UnitOfWork, entry: _Pending) -> None:
        """One command in its own savepoint; its failure is undone alone."""
        command, ctx = entry.command, entry.ctx
        ctx.failpoint("after_claim")
        batch.savepoint()
        try:
            with batch.joined() as uow:
                result = handler_for(command)(command, uow, ctx)
                uow.flush()
            entry.outcome = Outcome.succeeded(command.key, result)
            return
        except Rejected as rejection:
            batch.rollback_to_savepoint()
            entry.outcome = Outcome.rejected(
                command.key, rejection.reason, rejection.message, rejection.details
            )
            return
        except Exception as error:
            batch.rollback_to_savepoint()
            recovered = self._recovered(batch, command, error)
            if recovered is not None:
                entry.outcome = recovered
                return
            entry.error = error
        # not decided in this batch: its claim goes, so the commit leaves no trace of it
        batch.ledger.release_claim(command.key)

    def _recovered(self, batch: UnitOfWork, command: Command, error: Exception) -> Outcome | None:
        """A redelivery whose ledger row was purged: the outcome of its business row."""
        recovery = recovery_for(command)
        if recovery is None or not is_business_key_duplicate(error):
            return None
        batch.savepoint()
        try:
            with batch.joined() as uow:
                return Outcome.succeeded(command.key, recovery(command, uow))
        except Rejected as refusal:
            batch.rollback_to_savepoint()
            return Outcome.rejected(command.key, refusal.reason, refusal.message, refusal.details)
        except Exception:
            batch.rollback_to_savepoint()
            return None

    def _finish(self, entry: _Pending) -> Result:
        if entry.outcome is not None:
            return self.runner.observed(
                entry.delivery, self.runner.noted(entry.command, entry.outcome)
            )
        # Undone in the batch: the same attempt again, alone in its own transaction.
        if entry.error is not None and not entry.whole_batch:
            self.runner.note_error(entry.command.key, entry.error)
        result = self.runner.attempt(entry.command, entry.ctx, entry.retries)
        return self.runner.observed(entry.delivery, result)
