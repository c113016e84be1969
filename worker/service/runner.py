"""From a raw queue message to an outcome or a decision to retry later.

The Celery task hands every message here. The runner validates it, counts the
attempt in its own committed statement, executes the command in one transaction and
turns failures into the error taxonomy's answer: replay, retry later, or `failed`.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from producers.commands import Command, InvalidCommand, fingerprint_of, parse_command
from producers.settings import Settings
from worker.adapters.deliveries import DeliveryLog
from worker.adapters.errors import ErrorKind, classify, describe
from worker.domain.errors import InvalidCommandRejected
from worker.service.context import CommandContext
from worker.service.executor import execute, replay
from worker.service.failpoints import Failpoints
from worker.service.handlers import handler_for, recovery_for
from worker.service.outcome import Outcome
from worker.service.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryLater:
    """Try the message again after `countdown` seconds."""

    countdown: float
    error: str


class CommandRunner:
    """Runs queue messages; one instance per worker process."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        session_factory: sessionmaker[Session],
        failpoints: Failpoints | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.deliveries = DeliveryLog(engine)
        self.failpoints = failpoints or Failpoints(settings.failpoints)

    def run(self, message: Any, expected_type: str, retries: int = 0) -> Outcome | RetryLater:
        """Process one delivery. `retries` is the broker-side retry count (a fallback
        for backoff when the database cannot count attempts)."""
        try:
            command = self._parse(message, expected_type)
        except InvalidCommand as invalid:
            return self._reject_invalid(message, invalid, retries)
        try:
            attempt = self.deliveries.record_attempt(
                command.key, command.type, command.fingerprint(), command.message()
            )
        except Exception as error:  # the database itself is unreachable
            return self._retry_or_raise(error, retries)
        ctx = CommandContext(command.key, attempt.number, self.failpoints)
        if attempt.state == "discarded":
            return Outcome.failed(command.key, "discarded by an operator")
        if attempt.number > self.settings.max_attempts:
            return self._give_up(
                command, ctx, "attempt limit reached (the worker died mid-command)"
            )
        try:
            return self._execute(command, ctx)
        except Exception as error:
            return self._after_failure(command, ctx, error)

    def _parse(self, message: Any, expected_type: str) -> Command:
        try:
            size = len(json.dumps(message, ensure_ascii=False).encode())
        except (TypeError, ValueError):
            raise InvalidCommand("command: not JSON-serializable") from None
        if size > self.settings.max_payload_bytes:
            key = message.get("key") if isinstance(message, dict) else None
            raise InvalidCommand(
                f"command: {size} bytes exceeds the {self.settings.max_payload_bytes}-byte limit",
                key if isinstance(key, str) and len(key) <= 200 else None,
            )
        return parse_command(message, expected_type)

    def _execute(self, command: Command, ctx: CommandContext) -> Outcome:
        handler = handler_for(command)
        recovery = recovery_for(command)
        return execute(
            UnitOfWork(self.session_factory),
            ctx,
            command.type,
            command.fingerprint(),
            lambda uow: handler(command, uow, ctx),
            recover=(lambda uow: recovery(command, uow)) if recovery else None,
        )

    def _after_failure(
        self, command: Command, ctx: CommandContext, error: Exception
    ) -> Outcome | RetryLater:
        kind = classify(error)
        if kind is ErrorKind.DUPLICATE:
            return self._execute(command, ctx)  # the other delivery committed: replay it
        description = describe(error)
        log_method = log.warning if kind is ErrorKind.TRANSIENT else log.error
        log_method("command %s attempt %s failed (%s): %s", ctx.key, ctx.attempt, kind, description)
        if ctx.attempt >= self.settings.max_attempts:
            return self._give_up(command, ctx, description)
        try:
            self.deliveries.record_error(ctx.key, f"{kind}: {description}")
        except Exception:  # best effort: the retry is what matters
            log.warning("could not record the error of %s", ctx.key)
        return RetryLater(self._backoff(ctx.attempt), description)

    def _give_up(self, command: Command, ctx: CommandContext, error: str) -> Outcome:
        """Replay an outcome if one exists, else dead-letter the command as `failed`."""
        with UnitOfWork(self.session_factory) as uow:
            existing = uow.ledger.find(ctx.key)
        if existing is not None:
            return replay(existing, command.fingerprint())
        message = f"gave up after {ctx.attempt} attempts: {error}"
        self.deliveries.mark_failed(ctx.key, message)
        log.error("command %s failed permanently: %s", ctx.key, message)
        return Outcome.failed(ctx.key, message)

    def _reject_invalid(
        self, message: Any, invalid: InvalidCommand, retries: int
    ) -> Outcome | RetryLater:
        """Store `rejected: invalid_command` under the message's key, if it has one."""
        log.warning("invalid command rejected: %s", invalid.problem)
        if invalid.key is None:
            return Outcome.rejected(None, InvalidCommandRejected.reason, invalid.problem)
        body = {k: v for k, v in message.items() if k != "key"}
        ctx = CommandContext(invalid.key, 1, self.failpoints)

        def refuse(_: UnitOfWork) -> dict[str, Any]:
            raise InvalidCommandRejected(invalid.problem)

        command_type = str(message.get("type", "unknown"))[:100]
        try:
            return execute(
                UnitOfWork(self.session_factory), ctx, command_type, fingerprint_of(body), refuse
            )
        except Exception as error:
            return self._retry_or_raise(error, retries)

    def _retry_or_raise(self, error: Exception, retries: int) -> RetryLater:
        if classify(error) is ErrorKind.UNKNOWN:
            raise error
        log.warning("database unavailable, retrying later: %s", describe(error))
        return RetryLater(self._backoff(retries + 1), describe(error))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(
            self.settings.retry_backoff_max_seconds,
            self.settings.retry_backoff_seconds * 2 ** max(attempt - 1, 0),
        )
        return random.uniform(ceiling / 2, ceiling)
