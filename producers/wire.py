"""Limits on a message as it travels, checked before any field is validated.

Both sides apply them: the publisher so that a bad command is refused before it is
sent, the worker because a message on the queue may come from anyone. A message
that breaks them is an invalid command whose problem names the culprit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
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
    """Raise `InvalidCommand` if the message is too large, holds a NUL character or text
    that is not Unicode (half a surrogate pair).

    PostgreSQL cannot store U+0000 in text or JSONB, and no UTF-8 encoder accepts an
    unpaired surrogate (what a JavaScript client sends after cutting a string inside
    an emoji), so such a command could never be recorded; refusing it here keeps that
    failure a clear rejection under the message's key.
    """
    try:
        encoded = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise InvalidCommand(
            f"command: not representable as JSON ({error})", key_of(message)
        ) from None
    try:
        size = len(encoded.encode())
    except UnicodeEncodeError:
        where = _path_to(message, _has_surrogate) or "command"
        raise InvalidCommand(f"{printable(where)}: {UNPAIRED_SURROGATE}", key_of(message)) from None
    if size > max_bytes:
        raise InvalidCommand(
            f"command: {size} bytes exceeds the {max_bytes}-byte limit", key_of(message)
        )
    if "\\u0000" in encoded:
        where = _path_to(message, lambda text: NUL in text) or "command"
        raise InvalidCommand(
            f"{printable(where)}: contains a NUL character (U+0000), which cannot be stored",
            key_of(message),
        )


def printable(text: str) -> str:
    """`text` safe to store: NUL characters spelled out, unpaired surrogates escaped."""
    text = text.replace(NUL, "\\0")
    if _has_surrogate(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


UNPAIRED_SURROGATE = (
    "contains half of a surrogate pair (e.g. an emoji cut in two), which is not text "
    "and cannot be encoded as UTF-8"
)


def is_text(text: str) -> bool:
    """True unless `text` holds half of a surrogate pair (it then has no UTF-8 form)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_surrogate(text: str) -> bool:
    return not is_text(text)


def _path_to(value: Any, bad: Callable[[str], bool], path: str = "") -> str | None:
    """The dotted path of the first string (or mapping key) for which `bad` holds."""
    if isinstance(value, str):
        return path if bad(value) else None
    if isinstance(value, Mapping):
        for name, item in value.items():
            here = f"{path}.{name}" if path else str(name)
            if isinstance(name, str) and bad(name):
                return here
            found = _path_to(item, bad, here)
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _path_to(item, bad, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None
