"""Limits on a message as it travels, checked before any field is validated.

Both sides apply them: the publisher so that a bad command is refused before it is
sent, the worker because a message on the queue may come from anyone. A message
that breaks them is an invalid command whose problem names the culprit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from producers.commands import MAX_KEY_LENGTH, InvalidCommand

_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$")
NUL = "\x00"


def storable_key(candidate: object) -> str | None:
    """`candidate` if it is a well-formed idempotency key, else None.

    An invalid command is stored under its key only when that key is usable: a
    10 MB "key" or one with control characters has no business in the ledger.
    """
    if isinstance(candidate, str) and _KEY.match(candidate):
        return candidate
    return None


def key_of(message: object) -> str | None:
    """The usable idempotency key of a decoded message, if it has one."""
    return storable_key(message.get("key")) if isinstance(message, Mapping) else None


def check_message(message: Any, max_bytes: int) -> None:
    """Raise `InvalidCommand` if the message is too large or holds a NUL character.

    PostgreSQL cannot store U+0000 in text or JSONB, so such a command could never
    be recorded; refusing it here keeps that failure a clear rejection.
    """
    try:
        encoded = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise InvalidCommand(f"command: not representable as JSON ({error})") from None
    size = len(encoded.encode())
    if size > max_bytes:
        raise InvalidCommand(
            f"command: {size} bytes exceeds the {max_bytes}-byte limit", key_of(message)
        )
    if "\\u0000" in encoded:
        where = _nul_path(message) or "command"
        raise InvalidCommand(
            f"{printable(where)}: contains a NUL character (U+0000), which cannot be stored",
            key_of(message),
        )


def printable(text: str) -> str:
    """`text` safe to store: NUL characters spelled out."""
    return text.replace(NUL, "\\0")


def _nul_path(value: Any, path: str = "") -> str | None:
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, Mapping):
        for name, item in value.items():
            here = f"{path}.{name}" if path else str(name)
            if NUL in str(name):
                return here
            found = _nul_path(item, here)
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None
