"""The HTTP intake as plain, blocking service calls (the routes run them in threads).

Accepting a command is durable: `submit` returns only after the command — payload
included — is committed in `command_deliveries` (`queued`, `published_at` NULL), with
the request's trace context when it is traced. The relay publishes it after that
commit, inside that context (orderq/http/relay.py). Every statement on the
command log is `producers.command_log.CommandLog`'s; this module decides what an
answer means:

    key decided, same body        -> replay of the stored outcome
    key decided or accepted, other body -> 422 idempotency_key_reused, nothing written
    key accepted earlier, same body -> join it (no second command, nothing written)
    key new                       -> accepted: committed, then published by the relay
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from pydantic import ValidationError
from sqlalchemy import Engine

from orderq.http.api_keys import Caller, caller_of
from orderq.http.body import parse_json_object
from orderq.http.idempotency import BadIdempotencyKey, parse_idempotency_key, scoped_key
from orderq.http.problems import Problem
from producers.command_log import DEAD, CommandLog, KeyRecord
from producers.commands import (
    COMMANDS_BY_TYPE,
    Command,
    InvalidCommand,
    describe_validation_error,
    readable_message,
)
from producers.database import autocommit
from producers.outcomes import CommandStatus, status_of
from producers.wire import check_message
from worker.adapters import tracing

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="orderq"'}


@dataclass(frozen=True)
class Submission:
    """A POSTed command after intake: accepted now, or what its key already had."""

    client: str
    key: str  # as the client sent it
    command: Command
    #: this request recorded the command (False: the key was decided or accepted before)
    created: bool
    status: CommandStatus
    #: the request's trace context, stored with the command (None when not traced)
    trace_context: dict[str, str] | None = None

    @property
    def stored_key(self) -> str:
        return self.command.key


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers=UNAUTHORIZED_HEADERS)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header, or 401."""
    if not authorization:
        raise unauthorized("send your API key as Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("the Authorization header must be: Bearer <token>")
    return token


def type_of(record: KeyRecord) -> str | None:
    return record.decided.command_type if record.decided else record.command_type


class Intake:
    """Authentication, command intake and lookups on one engine (thread-safe)."""

    def __init__(self, engine: Engine, max_payload_bytes: int, max_json_depth: int) -> None:
        self.engine = engine
        self.max_payload_bytes = max_payload_bytes
        self.max_json_depth = max_json_depth

    @contextmanager
    def _as(self, token: str) -> Iterator[tuple[psycopg.Connection[Any], Caller]]:
        with autocommit(self.engine) as connection:
            caller = caller_of(connection, token)
            if caller is None:
                raise unauthorized("unknown or revoked API key")
            yield connection, caller

    # -- commands -----------------------------------------------------------------------------

    def submit(
        self,
        token: str,
        command_type: str,
        idempotency_key: str | None,
        raw_body: bytes,
        from_path: dict[str, Any] | None = None,
    ) -> Submission:
        """Authenticate, validate and durably accept one command (see the module doc)."""
        with self._as(token) as (connection, caller):
            key = self._key(idempotency_key)
            command = self._command(caller.client, key, command_type, raw_body, from_path or {})
            log = CommandLog(connection)
            trace_context = tracing.context_carrier()
            acceptance = log.accept(
                command.key, command.type, command.fingerprint(), command.message(), trace_context
            )
        if acceptance.created:
            status = CommandStatus(key, "queued")
            return Submission(caller.client, key, command, True, status, trace_context)
        existing = acceptance.existing
        assert existing is not None
        stored_fingerprint = (
            existing.decided.fingerprint if existing.decided else existing.fingerprint
        )
        if stored_fingerprint != command.fingerprint():
            raise Problem(
                422,
                "idempotency_key_reused",
                f"Idempotency-Key {key} was already used for a different "
                f"{type_of(existing) or 'command'} request; it keeps that request's outcome",
                key=key,
            )
        return Submission(caller.client, key, command, False, status_of(key, existing))

    @staticmethod
    def _key(header: str | None) -> str:
        try:
            return parse_idempotency_key(header)
        except BadIdempotencyKey as bad:
            raise Problem(400, "bad_idempotency_key", str(bad)) from None

    def _command(
        self,
        client: str,
        key: str,
        command_type: str,
        raw_body: bytes,
        from_path: dict[str, Any],
    ) -> Command:
        body = parse_json_object(raw_body, self.max_json_depth)
        for name in ("key", *from_path):
            if name in body:
                where = "the Idempotency-Key header" if name == "key" else "the URL path"
                raise invalid_command(name, f"not a body field here: it comes from {where}")
        if body.get("type", command_type) != command_type:
            raise invalid_command("type", f"this URL takes {command_type!r} commands only")
        message = {**body, **from_path, "type": command_type, "key": scoped_key(client, key)}
        try:
            command = COMMANDS_BY_TYPE[command_type].model_validate(message)
        except ValidationError as error:
            raise Problem(
                422,
                "invalid_command",
                describe_validation_error(error),
                key=key,
                errors=[
                    {
                        "field": ".".join(str(part) for part in item["loc"]) or "body",
                        "message": readable_message(item),
                    }
                    for item in error.errors()
                ],
            ) from None
        try:
            check_message(command.message(), self.max_payload_bytes)
        except InvalidCommand as invalid:
            field = invalid.problem.split(":", 1)[0]
            raise invalid_command(field, invalid.problem.split(": ", 1)[-1], key) from None
        return command

    def status(self, token: str, key: str) -> tuple[CommandStatus, str | None]:
        """The client's key's status and command type (`unknown`, None: never heard of)."""
        with self._as(token) as (connection, caller):
            record = CommandLog(connection).lookup_many([scoped_key(caller.client, key)])
        stored = next(iter(record.values()))
        return status_of(key, stored), type_of(stored)

    def records(self, stored_keys: Sequence[str]) -> dict[str, KeyRecord]:
        """What the log holds for many stored keys (the waiter's poll)."""
        with autocommit(self.engine) as connection:
            return CommandLog(connection).lookup_many(stored_keys)

    # -- business rows --------------------------------------------------------------------

    def authenticate(self, token: str) -> Caller:
        """The client behind `token`, or 401."""
        with self._as(token) as (_, caller):
            return caller


def invalid_command(field: str, message: str, key: str | None = None) -> Problem:
    """422 naming the field, like a worker's `rejected: invalid_command`."""
    return Problem(
        422,
        "invalid_command",
        f"{field}: {message}",
        key=key,
        errors=[{"field": field, "message": message}],
    )


def is_terminal(record: KeyRecord) -> bool:
    """Decided, or dead-lettered (failed / discarded)."""
    return record.decided is not None or record.state in DEAD
