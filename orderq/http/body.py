"""Reading a request body within bounds: size, JSON syntax, nesting depth, Unicode.

Each problem is a `Problem` with a 4xx status naming it; nothing here can end in a 500.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from orderq.http.problems import Problem


async def read_bounded(
    stream: AsyncIterator[bytes], content_length: str | None, limit: int
) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed `limit` bytes (from
    Content-Length before reading anything, else while reading a chunked body)."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise Problem(400, "bad_request", "Content-Length is not a number") from None
        if declared > limit:
            raise _too_large(declared, limit)
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > limit:
            raise _too_large(len(body), limit, at_least=True)
    return bytes(body)


def _too_large(size: int, limit: int, at_least: bool = False) -> Problem:
    return Problem(
        413,
        "body_too_large",
        f"the body is {'over ' if at_least else ''}{size} bytes; the limit is {limit} "
        "(ORDERQ_HTTP_MAX_BODY_BYTES)",
    )


def parse_json_object(raw: bytes, max_depth: int) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}` (commands whose fields all come
    from the path). 400 for bytes that are not JSON, are nested deeper than
    `max_depth` or hold text PostgreSQL cannot store; 422 for JSON that is not an object.
    """
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except UnicodeDecodeError:
        raise Problem(400, "malformed_json", "the body is not UTF-8") from None
    except ValueError as error:
        raise Problem(400, "malformed_json", f"the body is not JSON: {error}") from None
    if _depth_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    bad_text = _unstorable_text(value)
    if bad_text is not None:
        raise Problem(
            400,
            "malformed_json",
            f"{bad_text or 'body'}: holds an unpaired UTF-16 surrogate (half a character, "
            "e.g. a string cut inside an emoji), which is not Unicode text",
        )
    if not isinstance(value, dict):
        raise Problem(
            422,
            "invalid_command",
            f"body: expected a JSON object with the command's fields, got {type(value).__name__}",
            errors=[{"field": "body", "message": "expected a JSON object"}],
        )
    return value


def _too_deep(max_depth: int) -> Problem:
    return Problem(
        400,
        "body_too_deep",
        f"the body nests objects and arrays deeper than {max_depth} levels "
        "(ORDERQ_HTTP_MAX_JSON_DEPTH)",
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True if `value` nests containers deeper than `limit` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _unstorable_text(value: Any, path: str = "") -> str | None:
    """The path of a string (or name) that is not valid Unicode, if any."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return where
        elif isinstance(item, dict):
            for name, child in item.items():
                here = f"{where}.{name}" if where else str(name)
                if not _encodable(name):
                    return where or "body"
                stack.append((child, here))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{where}.{i}" if where else str(i)) for i, child in enumerate(item)
            )
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
