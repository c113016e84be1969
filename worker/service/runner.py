"""From a raw queue message to an outcome or a decision to retry later.

The Celery task hands every message here. The runner validates it, replays a key
that already has an outcome, counts the attempt in its own committed statement,
executes the command in one transaction and turns failures into the error
taxonomy's answer:

- invalid message          -> `rejected: invalid_command`, stored under its key
- quarantined message      -> kept in the quarantine; its key (if it plainly has one)
                              gets `rejected: invalid_command` (or `expired`)
- duplicate (ledger key)   -> replay the outcome the other delivery committed
- same key, other payload  -> `idempotency_key_reused`, remembered for the lookup
- transient                -> retry later, up to `max_attempts` counted attempts
- unknown                  -> retry later, up to `max_unknown_error_attempts`
- attempts used up         -> `failed`, kept as a dead letter with its payload

`run` never raises: a message always ends in an outcome or a bounded retry. The one
exception to "bounded" is a database that cannot be reached at all — then nothing can
be counted or dead-lettered, and the message waits (capped backoff) instead of being
lost.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from producers.command_log import Attempt
from producers.commands import (
    COMMANDS_BY_TASK,
    Command,
    InvalidCommand,
    fingerprint_of,
    parse_command,
)
from producers.wire import check_message, key_of, printable, storable_key
from worker.adapters.deliveries import DeliveryLog
from worker.adapters.envelope import EXPIRED, carried_command
from worker.adapters.errors import ErrorKind, classify, describe
from worker.adapters.quarantine import QuarantineRecord, QuarantineStore
from worker.domain.errors import (
    IdempotencyKeyReused,
    InvalidCommandRejected,
    MessageExpired,
    Rejected,
)
from worker.service.context import CommandContext
from worker.service.executor import execute, replay
from worker.service.failpoints import Failpoints
from worker.service.handlers import handler_for, recovery_for
from worker.service.observer import NO_OBSERVER, Delivery, RunObserver
from worker.service.outcome import Outcome
from worker.service.unit_of_work import UnitOfWork
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryLater:
    """Try the message again after `countdown` seconds."""

    countdown: float
    error: str


Result = Outcome | RetryLater


class CommandRunner:
    """Runs queue messages; one instance per worker process."""

    def __init__(
        self,
        settings: WorkerSettings,
        engine: Engine,
        session_factory: sessionmaker[Session],
        failpoints: Failpoints | None = None,
        observer: RunObserver = NO_OBSERVER,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.deliveries = DeliveryLog(engine)
        self.quarantine_store = QuarantineStore(engine)
        self.failpoints = failpoints or Failpoints(settings.failpoints, settings.failpoint_dir)
        self.loan_policy = settings.loan_policy()
        self.observer = observer

    # -- entry points ---------------------------------------------------------------------

    def run(self, message: Any, expected_type: str, retries: int = 0) -> Result:
        """Process one delivery of `message` to the task serving `expected_type`.

        `retries` is the broker-side retry count: it paces and bounds retries when
        the database cannot count attempts itself.
        """
        delivery = Delivery(expected_type)
        return self.observed(delivery, self._run(message, expected_type, retries, delivery))

    def _run(self, message: Any, expected_type: str, retries: int, delivery: Delivery) -> Result:
        try:
            command = self.parse(message, expected_type)
        except InvalidCommand as invalid:
            return self._reject_invalid(message, invalid, retries)
        try:
            attempt = self.deliveries.record_attempt(
                command.key, command.type, command.fingerprint(), command.message()
            )
        except Exception as error:
            return self._bookkeeping_failed(command.key, "count an attempt of", error, retries)
        settled = self.settle_counted(command, attempt, delivery, retries)
        if isinstance(settled, CommandContext):
            return self.attempt(command, settled, retries)
        return settled

    def settle_counted(
        self, command: Command, attempt: Attempt, delivery: Delivery, retries: int
    ) -> Result | CommandContext:
        """What a counted attempt leads to: an answer without running the command
        (a duplicate, a dead letter, attempts used up), or the context to run it in."""
        if attempt.decided is not None:
            # A duplicate of a decided key: its outcome, no attempt used, nothing run.
            return self.noted(command, replay(attempt.decided, command.fingerprint()))
        if attempt.is_dead:
            # A dead letter is not run again until an operator replays it: its stored failure.
            error = attempt.error or f"{command.key} is {attempt.state}"
            return Outcome.failed(command.key, error).as_replay()
        delivery.counted(command.key, attempt.number, attempt.accepted_seconds_ago)
        self.observer.attempt_counted(delivery)
        ctx = CommandContext(
            command.key,
            self.loan_policy,
            attempt.number,
            self.failpoints,
            self.settings.phone_region,
        )
        if attempt.number > self.settings.max_attempts:
            died = (
                f"{self.settings.max_attempts} attempts started and none finished "
                "(the worker process died or was killed mid-command)"
            )
            if attempt.error:
                died += f"; last error: {attempt.error}"
            return self._give_up(command, ctx, died, retries)
        return ctx

    def run_arguments(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], expected_type: str, retries: int = 0
    ) -> Result:
        """A delivery as task arguments: exactly one JSON object is a command.

        Any other shape (keyword arguments, several positional ones) is an invalid
        command, answered under the key the message plainly carries (see
        `carried_command`).
        """
        if len(args) == 1 and not kwargs:
            return self.run(args[0], expected_type, retries)
        carried = carried_command(list(args), kwargs)
        candidate = carried if carried is not None else kwargs
        problem = (
            "message: expected one JSON object as the only argument, got "
            f"{len(args)} positional and {len(kwargs)} keyword argument(s)"
        )
        invalid = InvalidCommand(problem, key_of(candidate))
        return self.observed(
            Delivery(expected_type), self._reject_invalid(candidate, invalid, retries)
        )

    def quarantine(self, record: QuarantineRecord, retries: int = 0) -> Result:
        """Keep a message the consumer's guard refused; answer its key, if it has one.

        The message is stored (or, seen before, counted) in its own committed
        statement; then the key gets `rejected: invalid_command` (`expired` for an
        expired message) through the executor like any rejection, unless it already
        has an outcome.
        """
        try:
            stored = self.quarantine_store.record(record)
        except Exception as error:
            what = f"message {record.task_id or record.fingerprint[:16]}"
            return self._bookkeeping_failed(what, "quarantine", error, retries)
        log.warning(
            "quarantined message %s as #%s (%s, delivery %s): %s",
            record.task_id or "(no id)",
            stored.id,
            record.problem,
            stored.deliveries,
            record.reason,
        )
        if record.key is None:
            return Outcome.rejected(None, record.rejection or InvalidCommandRejected.reason, "")
        refusal: Rejected = (
            MessageExpired(record.reason)
            if record.rejection == EXPIRED
            else InvalidCommandRejected(record.reason)
        )
        command_type, fingerprint = _identity(record.command)
        return self._store_rejection(record.key, command_type, fingerprint, refusal, retries)

    def reject_unknown_task(
        self, task_name: object, args: object, kwargs: object, retries: int = 0
    ) -> Result:
        """A message sent to a task name no command uses: `rejected: invalid_command`."""
        message = (
            args[0] if isinstance(args, list | tuple) and len(args) == 1 and not kwargs else args
        )
        known = ", ".join(sorted(COMMANDS_BY_TASK))
        problem = f"task: no command is sent to task {str(task_name)[:200]!r} (known: {known})"
        invalid = InvalidCommand(problem, key_of(message))
        return self.observed(Delivery("unknown"), self._reject_invalid(message, invalid, retries))

    def observed(self, delivery: Delivery, result: Result) -> Result:
        if delivery.key is None and isinstance(result, Outcome):
            delivery.key = result.key
        self.observer.finished(delivery, result)
        return result

    # -- the normal path ------------------------------------------------------------------

    def parse(self, message: Any, expected_type: str) -> Command:
        check_message(message, self.settings.max_payload_bytes)  # before any field is read
        return parse_command(message, expected_type)

    def new_uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def _stored_outcome(self, command: Command) -> Outcome | None:
        with UnitOfWork(self.session_factory) as uow:
            existing = uow.ledger.find(command.key)
        return replay(existing, command.fingerprint()) if existing is not None else None

    def _execute(self, command: Command, ctx: CommandContext) -> Outcome:
        handler = handler_for(command)
        recovery = recovery_for(command)
        return execute(
            self.new_uow,
            ctx,
            command.type,
            command.fingerprint(),
            lambda uow: handler(command, uow, ctx),
            recover=(lambda uow: recovery(command, uow)) if recovery else None,
        )

    def noted(self, command: Command, outcome: Outcome) -> Outcome:
        """`outcome`, after remembering a refused reuse of the key (best effort)."""
        if outcome.status == "rejected" and outcome.reason == IdempotencyKeyReused.reason:
            try:
                self.deliveries.record_key_reuse(command.key, command.type, command.fingerprint())
            except Exception:  # the refusal itself is the answer; the note is extra
                log.warning("could not record the refused reuse of %s", command.key)
            log.warning(
                "command %s refused: the key was already used for a different payload",
                command.key,
            )
        return outcome

    def attempt(self, command: Command, ctx: CommandContext, retries: int) -> Result:
        replayed_duplicate = False
        while True:
            try:
                return self.noted(command, self._execute(command, ctx))
            except Exception as error:
                kind = classify(error)
                if kind is ErrorKind.DUPLICATE and not replayed_duplicate:
                    replayed_duplicate = True  # the other delivery committed: read its outcome
                    continue
                return self._after_failure(command, ctx, kind, error, retries)

    def _after_failure(
        self,
        command: Command,
        ctx: CommandContext,
        kind: ErrorKind,
        error: Exception,
        retries: int,
    ) -> Result:
        description = describe(error)
        if kind is ErrorKind.UNKNOWN:
            limit = min(self.settings.max_unknown_error_attempts, self.settings.max_attempts)
            log.error(
                "command %s attempt %s/%s failed (unknown error): %s",
                ctx.key,
                ctx.attempt,
                limit,
                description,
                exc_info=error,
            )
        else:
            limit = self.settings.max_attempts
            log.warning(
                "command %s attempt %s/%s failed (%s): %s",
                ctx.key,
                ctx.attempt,
                limit,
                kind,
                description,
            )
        if ctx.attempt >= limit:
            return self._give_up(command, ctx, f"{kind} error: {description}", retries)
        self.note_error(ctx.key, error, kind)
        return RetryLater(self._backoff(ctx.attempt), description)

    def note_error(self, key: str, error: Exception, kind: ErrorKind | None = None) -> None:
        """Remember `error` as the key's latest failure (best effort: the retry is what
        matters)."""
        try:
            self.deliveries.record_error(key, f"{kind or classify(error)}: {describe(error)}")
        except Exception:
            log.warning("could not record the error of %s", key)

    def _give_up(self, command: Command, ctx: CommandContext, error: str, retries: int) -> Result:
        """Replay an outcome if one exists, else dead-letter the command as `failed`."""
        message = f"gave up after {ctx.attempt} attempts: {error}"
        try:
            decided = self._stored_outcome(command)
            if decided is not None:
                return decided
            self.deliveries.mark_failed(ctx.key, message, command.message(), command.fingerprint())
        except Exception as failure:
            return self._bookkeeping_failed(ctx.key, "dead-letter", failure, retries)
        log.error("command %s failed permanently: %s", ctx.key, message)
        return Outcome.failed(ctx.key, message)

    # -- invalid messages -----------------------------------------------------------------

    def _reject_invalid(self, message: Any, invalid: InvalidCommand, retries: int) -> Result:
        """Store `rejected: invalid_command` under the message's key, if it has a usable one."""
        problem = printable(invalid.problem)
        key = storable_key(invalid.key)
        if key is None:
            log.warning("invalid command without a usable idempotency key dropped: %s", problem)
            return Outcome.rejected(None, InvalidCommandRejected.reason, problem)
        log.warning("invalid command %s rejected: %s", key, problem)
        command_type, fingerprint = _identity(message)
        return self._store_rejection(
            key, command_type, fingerprint, InvalidCommandRejected(problem), retries
        )

    def _store_rejection(
        self, key: str, command_type: str, fingerprint: str, refusal: Rejected, retries: int
    ) -> Result:
        """Decide `key` as rejected through the executor (a key with an outcome keeps it)."""

        def refuse(_: UnitOfWork) -> dict[str, Any]:
            raise refusal

        ctx = CommandContext(key, self.loan_policy, 1, self.failpoints, self.settings.phone_region)
        try:
            return execute(self.new_uow, ctx, command_type, fingerprint, refuse)
        except Exception as error:
            return self._bookkeeping_failed(key, "store the rejection of", error, retries)

    # -- when the bookkeeping itself fails --------------------------------------------------

    def _bookkeeping_failed(self, key: str, action: str, error: Exception, retries: int) -> Result:
        """The database could not count, store or dead-letter: retry, or drop loudly.

        Transient (the database is down or busy): retry with capped backoff for as
        long as it takes — the dead-letter store is the database, so giving up would
        only lose the command. Unknown: bounded by the broker's retry count.
        """
        description = describe(error)
        if classify(error) is not ErrorKind.UNKNOWN:
            log.warning("could not %s %s, retrying later: %s", action, key, description)
            return RetryLater(self._backoff(retries + 1), description)
        if retries + 1 >= self.settings.max_unknown_error_attempts:
            log.critical(
                "DROPPED %s: could not %s it after %s tries: %s — fix the cause and publish "
                "it again with the same key",
                key,
                action,
                retries + 1,
                description,
                exc_info=error,
            )
            return Outcome.failed(key, f"dropped, could not {action} it: {description}")
        log.error("could not %s %s (unknown error), retrying: %s", action, key, description)
        return RetryLater(self._backoff(retries + 1), description)

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(
            attempt, self.settings.retry_backoff_seconds, self.settings.retry_backoff_max_seconds
        )


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt`: exponential, capped, jittered.

    The ceiling doubles per attempt (base, 2*base, 4*base ... up to cap); the delay is a
    random point in the upper half of it, so retries of many commands that failed
    together (a database restart) spread out instead of returning in one wave. The
    exponent is bounded too: `attempt` may come from a message's `retries` header.
    """
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), 64))
    return random.uniform(ceiling / 2, ceiling)


def _identity(message: Any) -> tuple[str, str]:
    """The command type and payload fingerprint a rejection of `message` is stored with:
    the command's own when it is a valid one (so sending the same command again
    replays the rejection), else a hash of whatever the message held."""
    if isinstance(message, Mapping):
        try:
            command = parse_command(message)
            return command.type, command.fingerprint()
        except Exception:  # not a valid command, or not text that can be hashed as UTF-8
            body: Any = {name: value for name, value in message.items() if name != "key"}
            command_type = printable(str(message.get("type", "unknown")))[:100]
    else:
        body, command_type = message, "unknown"
    try:
        return command_type, fingerprint_of({"body": body})
    except (TypeError, ValueError):
        return command_type, fingerprint_of({"unrepresentable": repr(body)[:1000]})
