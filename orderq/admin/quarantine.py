"""The quarantine, for operators: list, show (decoded safely), discard, replay.

Quarantined messages are broker messages the worker's guard refused (see
worker/adapters/envelope.py): kept with their headers, properties, (bounded) body, the
reason, broker, queue and when. A message that carried a usable key already answered
it (`rejected: invalid_command`, or `expired`), so producers looking the key up know.

Replaying repairs what can be repaired — the envelope: headers, content type, time
limits, schedule, argument shape — by publishing the command the message carried, in
a clean message through the publisher. The command itself must be valid. Its key has
usually been answered by the quarantine already (one key, one outcome), so a replay
mostly needs a new key (`key=`); a key with an outcome is refused, naming it.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine

from producers.command_log import CommandLog
from producers.commands import COMMANDS_BY_TASK, Command, InvalidCommand, parse_command
from producers.database import autocommit, transaction
from producers.publisher import Publisher, Receipt
from producers.wire import check_message, storable_key
from worker.adapters.envelope import carried_command
from worker.adapters.quarantine import QuarantinedMessage, QuarantineLog, QuarantineState
from worker.settings import WorkerSettings

StateFilter = Literal["quarantined", "replayed", "discarded", "all"]
#: what `show` prints of a body unless asked for more
SHOWN_BODY_CHARS = 4000


class QuarantineError(Exception):
    """The operation does not apply to this message; the text says why, in one line."""


@dataclass(frozen=True)
class Replayed:
    """A replayed message: the command sent, under which key, and the broker's receipt."""

    message_id: int
    command: Command
    receipt: Receipt


class Quarantine:
    """List, show, discard and replay quarantined messages."""

    def __init__(self, engine: Engine, settings: WorkerSettings | None = None) -> None:
        self.engine = engine
        self.max_payload_bytes = (settings or WorkerSettings()).max_payload_bytes

    def list(
        self,
        state: StateFilter = "quarantined",
        problem: str | None = None,
        key: str | None = None,
        limit: int = 50,
    ) -> list[QuarantinedMessage]:
        """Messages in `state`, the most recently seen first."""
        states = list(QuarantineState) if state == "all" else [QuarantineState(state)]
        with autocommit(self.engine) as connection:
            return QuarantineLog(connection).list(states, problem, key, limit)

    def get(self, message_id: int) -> QuarantinedMessage:
        with autocommit(self.engine) as connection:
            message = QuarantineLog(connection).get(message_id)
        if message is None:
            raise QuarantineError(f"#{message_id}: no such quarantined message")
        return message

    def counts(self) -> dict[str, int]:
        with autocommit(self.engine) as connection:
            return QuarantineLog(connection).counts()

    def discard(self, message_id: int, reason: str, by: str) -> QuarantinedMessage:
        """Give up on a quarantined message; the reason and operator are kept."""
        reason = reason.strip()
        if not reason:
            raise QuarantineError("a discard needs a reason (--reason), kept for audit")
        with transaction(self.engine) as connection:
            log = QuarantineLog(connection)
            message = _require_quarantined(log.get(message_id, lock=True), message_id, "discarded")
            log.discard(message.id, reason, by)
        return self.get(message_id)

    def repaired(self, message: QuarantinedMessage, key: str | None = None) -> Command:
        """The command `message` carried, in a form that can be published (with `key`
        instead of its own if given); QuarantineError says why there is none."""
        if message.body_truncated:
            raise QuarantineError(
                f"#{message.id} cannot be repaired: only {len(message.body)} of its "
                f"{message.body_size} bytes were kept"
            )
        command = _carried(message.body)
        if command is None:
            raise QuarantineError(
                f"#{message.id} cannot be repaired: its body holds no command object "
                f"({message.problem}: {message.reason})"
            )
        if key is not None:
            if storable_key(key) is None:
                raise QuarantineError(
                    f"{key!r} is not a usable key (1-200 printable ASCII characters, no spaces)"
                )
            command = {**command, "key": key}
        expected = COMMANDS_BY_TASK.get(message.task_name or "")
        try:
            check_message(command, self.max_payload_bytes)
            return parse_command(
                command, expected.model_fields["type"].default if expected else None
            )
        except InvalidCommand as invalid:
            raise QuarantineError(
                f"#{message.id} cannot be repaired: the command it carries is invalid "
                f"({invalid.problem})"
            ) from None

    def replay(
        self, message_id: int, publisher: Publisher, by: str, key: str | None = None
    ) -> Replayed:
        """Publish the command a quarantined message carried, repaired, and mark it
        replayed. The row stays locked until the broker took the message."""
        with transaction(self.engine) as connection:
            log = QuarantineLog(connection)
            message = _require_quarantined(log.get(message_id, lock=True), message_id, "replayed")
            command = self.repaired(message, key)
            decided = CommandLog(connection).lookup(command.key).decided
            if decided is not None:
                hint = "" if key else ": replay it under a new key with --key NEW-KEY"
                raise QuarantineError(
                    f"{command.key} already has an outcome ({decided.status}: "
                    f"{decided.reason or 'done'}){hint}"
                )
            receipt = publisher.publish(command)
            log.mark_replayed(message.id, command.key, by)
        return Replayed(message.id, command, receipt)


def _require_quarantined(
    message: QuarantinedMessage | None, message_id: int, action: str
) -> QuarantinedMessage:
    if message is None:
        raise QuarantineError(f"#{message_id}: no such quarantined message")
    if message.state == QuarantineState.REPLAYED:
        raise QuarantineError(
            f"#{message.id} was already replayed as {message.replayed_key}; it cannot be {action}"
        )
    if message.state == QuarantineState.DISCARDED:
        raise QuarantineError(
            f"#{message.id} was discarded ({message.discard_reason}); it cannot be {action}"
        )
    return message


def _carried(body: bytes) -> Mapping[str, Any] | None:
    """The command object in a quarantined body: a Celery body (protocol 1 or 2), or the
    same inside a raw broker envelope the transport could not read."""
    for _ in range(2):
        try:
            value = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            return None
        if isinstance(value, list) and len(value) == 3:
            args, kwargs = value[0], value[1]
        elif isinstance(value, dict) and "args" in value:
            args, kwargs = value.get("args"), value.get("kwargs")
        elif isinstance(value, dict) and isinstance(value.get("body"), str):
            properties = value.get("properties")
            inner = value["body"].encode("utf-8", "surrogatepass")
            base64ed = isinstance(properties, dict) and properties.get("body_encoding") == "base64"
            try:
                body = base64.b64decode(inner) if base64ed else inner
            except ValueError:
                return None
            continue
        else:
            return None
        found = carried_command(args, kwargs)
        if found is not None:
            return found
        mappings = (
            [arg for arg in args if isinstance(arg, Mapping)] if isinstance(args, list) else []
        )
        return mappings[0] if len(mappings) == 1 else None
    return None


# -- showing untrusted bytes ---------------------------------------------------------------


def decoded_body(body: bytes, limit: int = SHOWN_BODY_CHARS) -> tuple[str, str]:
    """(how the body was decoded, the text to show): JSON pretty-printed when it is JSON,
    else UTF-8 with undecodable bytes as \\xNN; control and invisible characters escaped,
    cut at `limit` characters."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes (not UTF-8)", safe_text(body.decode("utf-8", "backslashreplace"), limit)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return "text (not JSON)", safe_text(text, limit)
    try:
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return "JSON", safe_text(text, limit)
    return "JSON", safe_text(pretty, limit)


def safe_text(text: str, limit: int = SHOWN_BODY_CHARS) -> str:
    """`text` safe for a terminal: control, format (bidi, zero-width) and unpaired
    surrogate characters written as escapes (newlines and tabs kept), cut at `limit`."""
    cut = len(text) > limit
    shown = []
    for char in text[:limit]:
        if char in "\n\t":
            shown.append(char)
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(char)
            if code < 0x100:
                shown.append(f"\\x{code:02x}")
            elif code < 0x10000:
                shown.append(f"\\u{code:04x}")
            else:
                shown.append(f"\\U{code:08x}")
        else:
            shown.append(char)
    result = "".join(shown)
    if cut:
        result += f"\n… ({len(text) - limit} more characters; --full shows everything kept)"
    return result
