"""The raw-message guard: what a broker message must look like before Celery sees it.

    verdict = classify_envelope(RawMessage.of(kombu_message), rules)
    if isinstance(verdict, Quarantined): ...   # acknowledge it and store it with the reason
    else: ...                                  # verdict.headers/.body: a message Celery can run

Celery builds a request straight from a message's protocol headers and body; a header
of the wrong type, a body of the wrong shape or bytes that do not decode make that
code raise in the worker's main process, where it kills or wedges the whole worker
(docs/reliability.md lists what each did). This module decides, with no I/O and
without raising, whether a message is one of orderq's tasks in a form Celery handles:

- `Accepted`: clean protocol-2 headers (only the ones Celery needs, each checked) and
  the decoded body, for the task the message names;
- `Quarantined`: why not (`problem` groups the reasons, `reason` names the field), and
  the idempotency key the message plainly carries, so that key can get its answer.

It is one function of the message's parts so a batching consumer can call it for each
message it takes, and the property tests can run it on thousands of envelopes.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dateutil.parser import isoparse

from producers.commands import COMMANDS_BY_TASK
from producers.wire import UNPAIRED_SURROGATE, is_text, storable_key

#: Set by the transport guards (worker/adapters/transport_guard.py) on a message whose
#: broker envelope could not be read; the value says why.
UNREADABLE_HEADER = "x-orderq-unreadable"
#: The size of the original raw message when the transport guard kept only part of it.
RAW_SIZE_HEADER = "x-orderq-raw-size"

JSON = "application/json"
UTF8 = frozenset({"utf-8", "utf8"})
MAX_RETRIES_HEADER = 10_000
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 200
#: Optional protocol-2 headers passed on to Celery when they are short strings (logs and
#: monitoring show them; tracing continues the publisher's trace from the W3C trace
#: context, which OpenTelemetry's extractor checks itself); everything else a message
#: carries is left behind.
PASSED_STRINGS = {
    "root_id": MAX_ID_LENGTH,
    "parent_id": MAX_ID_LENGTH,
    "group": MAX_ID_LENGTH,
    "origin": MAX_NAME_LENGTH,
    "argsrepr": 1024,
    "kwargsrepr": 1024,
    # W3C trace context: `traceparent` is 55 characters in version 00; `tracestate`
    # holds at most 32 list members, 512 characters are what every tracer must pass on
    "traceparent": 128,
    "tracestate": 512,
}
#: Parts of a Celery body that make the worker publish further messages after the task.
WORKFLOW_PARTS = ("callbacks", "errbacks", "chain", "chord")


class Problem(StrEnum):
    """Why a message was quarantined, in groups an operator can filter on."""

    UNREADABLE = "unreadable"  # the broker envelope itself (transport guards)
    CONTENT_TYPE = "content_type"  # not application/json
    ENCODING = "encoding"  # declared or actual encoding other than UTF-8
    TOO_LARGE = "too_large"  # body beyond what the guard decodes
    JSON = "json"  # not JSON, or JSON orderq does not accept (NaN, kombu-typed values)
    TOO_DEEP = "too_deep"  # nested beyond max_message_depth
    TEXT = "text"  # strings that are not Unicode (unpaired surrogates)
    SHAPE = "shape"  # not a Celery task body (args/kwargs/embed), or a workflow
    HEADER = "header"  # a protocol header missing or of the wrong type
    TASK = "task"  # not a task this worker runs (Celery's own tasks included)
    SCHEDULE = "schedule"  # eta/countdown beyond max_message_delay_seconds
    TIME_LIMIT = "time_limit"  # a per-message time limit invalid, below the floor, above the limit
    EXPIRED = "expired"  # `expires` passed before a worker received it
    REFUSED = "refused"  # Celery or kombu refused it after all (a gap in the guard)


#: The rejection stored under the key of a quarantined message (unless it has one).
INVALID_COMMAND = "invalid_command"
EXPIRED = "expired"


@dataclass(frozen=True)
class RawMessage:
    """A broker message as received: every part may be of any type."""

    headers: Any
    body: Any
    content_type: Any
    content_encoding: Any
    properties: Any = None
    delivery_info: Any = None

    @classmethod
    def of(cls, message: Any) -> RawMessage:
        """The parts of a kombu message (or anything that looks a bit like one)."""
        return cls(
            headers=getattr(message, "headers", None),
            body=getattr(message, "body", None),
            content_type=getattr(message, "content_type", None),
            content_encoding=getattr(message, "content_encoding", None),
            properties=getattr(message, "properties", None),
            delivery_info=getattr(message, "delivery_info", None),
        )


@dataclass(frozen=True)
class EnvelopeRules:
    """What this worker accepts."""

    #: every task this worker may be sent (orderq's own; Celery's built-ins excluded)
    tasks: frozenset[str]
    #: the decoded body is refused above this size (the command limit is checked later)
    max_body_bytes: int
    max_depth: int
    max_delay_seconds: float
    min_time_limit: float
    max_time_limit: float
    max_soft_time_limit: float
    max_retries: int = MAX_RETRIES_HEADER

    @classmethod
    def from_settings(cls, settings: Any, tasks: Iterable[str]) -> EnvelopeRules:
        """Rules from `WorkerSettings` and the names of the app's registered tasks."""
        return cls(
            tasks=frozenset(name for name in tasks if not name.startswith("celery.")),
            # room for a command at the limit plus Celery's list and embed around it, so
            # that an oversized command is answered by the runner under its key
            max_body_bytes=max(16 * settings.max_payload_bytes, 1 << 20),
            max_depth=settings.max_message_depth,
            max_delay_seconds=settings.message_delay_limit,
            min_time_limit=settings.message_time_limit_floor,
            max_time_limit=float(settings.task_time_limit_seconds),
            max_soft_time_limit=float(settings.task_soft_time_limit_seconds),
        )


@dataclass(frozen=True)
class Accepted:
    """A message Celery can take: checked headers and the decoded body."""

    task: str
    headers: dict[str, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    #: the JSON body Celery hands to the pool (the original bytes when nothing changed)
    body: bytes

    @property
    def payload(self) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
        """The decoded body as Celery's protocol 2 has it: (args, kwargs, embed)."""
        return self.args, self.kwargs, _empty_embed()


@dataclass(frozen=True)
class Quarantined:
    """A message that must not reach Celery, and why."""

    problem: Problem
    reason: str
    #: a well-formed idempotency key the message plainly carries (None: none to answer)
    key: str | None = None
    #: the mapping that carries `key` (the command as sent), when there is one
    command: Mapping[str, Any] | None = None
    task: str | None = None
    task_id: str | None = None
    #: the rejection stored under `key`
    rejection: str = INVALID_COMMAND

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", _one_line(self.reason))


Verdict = Accepted | Quarantined


class _Refusal(Exception):
    def __init__(self, problem: Problem, reason: str, rejection: str = INVALID_COMMAND) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason
        self.rejection = rejection


@dataclass
class _Parts:
    """What the guard has learned so far (kept for the quarantine record)."""

    task: str | None = None
    task_id: str | None = None
    args: Any = None
    kwargs: Any = None
    changed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def classify_envelope(
    raw: RawMessage, rules: EnvelopeRules, now: datetime | None = None
) -> Verdict:
    """Accept `raw` as a task message or say why it is quarantined. Never raises."""
    parts = _Parts()
    try:
        return _classify(raw, rules, now or datetime.now(UTC), parts)
    except _Refusal as refusal:
        return _quarantined(parts, refusal.problem, refusal.reason, refusal.rejection)
    except RecursionError:
        return _quarantined(parts, Problem.TOO_DEEP, "body: nested too deeply to read")
    except Exception as error:  # a gap in the checks below must not take the worker down
        return _quarantined(
            parts, Problem.REFUSED, f"message: unreadable ({type(error).__name__}: {error})"
        )


def carried_command(args: Any, kwargs: Any) -> Mapping[str, Any] | None:
    """The mapping a message plainly sends as its command, if it has a usable key.

    In order: a mapping among the positional arguments (or sent in their place), the
    keyword arguments themselves (the command's fields sent as keywords), a mapping
    among their values.
    """
    candidates: list[Any] = []
    if isinstance(args, Mapping):  # the command sent where the argument list belongs
        candidates.append(args)
    elif isinstance(args, list | tuple):
        candidates.extend(arg for arg in args if isinstance(arg, Mapping))
    if isinstance(kwargs, Mapping):
        candidates.append(kwargs)
        candidates.extend(value for value in kwargs.values() if isinstance(value, Mapping))
    for candidate in candidates:
        if storable_key(candidate.get("key")) is not None:
            return candidate
    return None


# -- the checks, in the order a reader of the message meets them --------------------------


def _classify(raw: RawMessage, rules: EnvelopeRules, now: datetime, parts: _Parts) -> Verdict:
    headers = raw.headers if raw.headers is not None else {}
    if not isinstance(headers, Mapping):
        parts.args, parts.kwargs = arguments_in_body(raw.body, rules)
        raise _Refusal(Problem.HEADER, f"headers: a {_kind(headers)}, not a table")
    parts.task_id = _short_text(headers.get("id"))
    parts.task = _short_text(headers.get("task"))
    unreadable = headers.get(UNREADABLE_HEADER)
    if unreadable is not None:
        parts.args, parts.kwargs = arguments_in_body(raw.body, rules)
        raise _Refusal(Problem.UNREADABLE, str(unreadable))
    try:
        _check_content(raw)
        body = _decode(raw.body, rules)
    except _Refusal:
        # a body that is JSON after all (wrong label, NaN ...) still names its key
        parts.args, parts.kwargs = arguments_in_body(raw.body, rules)
        raise
    if "task" in headers:
        if isinstance(body, Mapping) and "args" in body:
            # Celery's hybrid: protocol-2 headers, protocol-1 body
            fields = {**body, **headers}
            args, kwargs, embed = _protocol1_body(body, parts)
            parts.changed = True
        else:
            fields = dict(headers)
            args, kwargs, embed = _protocol2_body(body, parts)
    else:  # message protocol 1: everything in the body
        if isinstance(body, list):  # a protocol-2 body without its headers
            parts.args = body[0] if body else None
            parts.kwargs = body[1] if len(body) > 1 else None
        elif isinstance(body, Mapping) and "args" in body:
            parts.args, parts.kwargs = body.get("args"), body.get("kwargs")
        elif isinstance(body, Mapping):  # perhaps the command itself
            parts.kwargs = body
        if not isinstance(body, Mapping) or "task" not in body:
            raise _Refusal(
                Problem.HEADER,
                "headers.task: missing (and the body is not a protocol-1 task message)",
            )
        fields = dict(body)
        args, kwargs, embed = _protocol1_body(body, parts)
        parts.changed = True
        parts.task_id = _short_text(fields.get("id"))
        parts.task = _short_text(fields.get("task"))
    task = _task_name(fields.get("task"), rules)
    task_id = _task_id(fields.get("id"))
    clean = {"lang": "py", "task": task, "id": task_id}
    clean["retries"] = _retries(fields.get("retries"), rules)
    clean["timelimit"] = _time_limits(fields.get("timelimit"), rules)
    clean["eta"] = _eta(fields.get("eta"), rules, now)
    if task in COMMANDS_BY_TASK:
        _check_expiry(fields.get("expires"), now)
        # Expiry was decided just now: a command let in runs, instead of being revoked
        # by Celery later while it waits for a pool process, without an outcome.
        clean["expires"] = None
    else:
        # Other tasks (maintenance jobs sent by beat) keep Celery's meaning: an expired
        # run is skipped, the next one comes.
        expires = _timestamp("expires", fields.get("expires"))
        clean["expires"] = expires.isoformat() if expires is not None else None
    for name, limit in PASSED_STRINGS.items():
        value = fields.get(name)
        # printable: Celery logs some of them, and a sender's newlines or escape codes
        # must not forge log lines
        if isinstance(value, str) and len(value) <= limit and value.isprintable():
            clean[name] = value
    _check_workflow(embed)
    clean.setdefault("root_id", task_id)
    encoded = (
        json.dumps([args, kwargs, _empty_embed()], ensure_ascii=False).encode()
        if parts.changed
        else bytes(raw.body)
        if not isinstance(raw.body, str)
        else raw.body.encode()
    )
    return Accepted(task=task, headers=clean, args=args, kwargs=kwargs, body=encoded)


def _check_content(raw: RawMessage) -> None:
    content_type = raw.content_type
    if content_type != JSON:
        shown = "missing" if content_type in (None, "") else repr(_clip(content_type))
        raise _Refusal(Problem.CONTENT_TYPE, f"content_type: {shown}; orderq accepts {JSON} only")
    encoding = raw.content_encoding
    if encoding not in (None, "") and (
        not isinstance(encoding, str) or encoding.lower() not in UTF8
    ):
        raise _Refusal(
            Problem.ENCODING,
            f"content_encoding: {_clip(encoding)!r}; orderq accepts UTF-8 only",
        )


def _decode(body: Any, rules: EnvelopeRules) -> Any:
    if isinstance(body, memoryview | bytearray):
        body = bytes(body)
    if isinstance(body, str):  # a transport that hands over text (kombu usually encodes)
        try:
            body = body.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refusal(Problem.TEXT, f"body: {UNPAIRED_SURROGATE}") from None
    if not isinstance(body, bytes) or not body:
        raise _Refusal(Problem.SHAPE, f"body: {'empty' if not body else _kind(body)}")
    if len(body) > rules.max_body_bytes:
        raise _Refusal(
            Problem.TOO_LARGE,
            f"body: {len(body)} bytes; the worker reads at most {rules.max_body_bytes}",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Refusal(
            Problem.ENCODING, f"body: not UTF-8 (byte {error.start}: {error.reason})"
        ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _Refusal(Problem.TOO_DEEP, "body: nested too deeply to read") from None
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, integers too long
        raise _Refusal(Problem.JSON, f"body: not valid JSON ({error})") from None
    if _needs_walk(text, rules.max_depth):
        _walk(value, rules.max_depth)
    return value


def _needs_walk(text: str, max_depth: int) -> bool:
    """False when the JSON text alone shows the walk would find nothing (most commands):
    fewer brackets than the depth limit, no escape that could hide half a surrogate pair
    (strict UTF-8 decoding already refused raw ones), no kombu type marker."""
    return text.count("[") + text.count("{") >= max_depth or "\\u" in text or "__type__" in text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _walk(value: Any, max_depth: int) -> None:
    """Depth, text and kombu's typed values, checked without recursion. The path of an
    item is kept as a link to its parent's and spelled out only for a refusal."""
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]
    while stack:
        item, depth, link = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                raise _Refusal(Problem.TEXT, f"{_path(link)}: {UNPAIRED_SURROGATE}")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= max_depth:
            raise _Refusal(
                Problem.TOO_DEEP, f"{_path(link)}: nested more than {max_depth} levels deep"
            )
        if isinstance(item, list):
            stack.extend((child, depth + 1, (link, index)) for index, child in enumerate(item))
            continue
        if item.keys() == {"__type__", "__value__"}:
            # kombu's JSON decoder would turn this into a Python object in the pool
            raise _Refusal(
                Problem.JSON, f"{_path(link)}: a kombu-typed value ({_clip(item['__type__'])})"
            )
        for name, child in item.items():
            if not is_text(name):
                raise _Refusal(Problem.TEXT, f"{_path(link)}: a field name {UNPAIRED_SURROGATE}")
            stack.append((child, depth + 1, (link, name)))


def _path(link: Any) -> str:
    names: list[str] = []
    while link is not None:
        link, name = link
        names.append(_clip(name, 40) if isinstance(name, str) else str(name))
    return ".".join(["body", *reversed(names)])


def arguments_in_body(body: Any, rules: EnvelopeRules) -> tuple[Any, Any]:
    """(args, kwargs) in a body the guard refused before reading it as a task, when they
    are plainly there: the body is JSON after all (whatever its label said), or a
    kombu envelope, kept by a transport guard, whose body is. The key they carry can
    then be answered. (None, None) when not; never raises."""
    try:
        for _ in range(2):  # the message itself, then the envelope kept inside it
            if isinstance(body, bytes | bytearray | memoryview):
                body = bytes(body).decode("utf-8")
            if not isinstance(body, str) or len(body) > rules.max_body_bytes:
                return None, None
            value = json.loads(body)
            if isinstance(value, list) and value:
                return value[0], value[1] if len(value) > 1 else None
            if isinstance(value, dict) and "args" in value:
                return value.get("args"), value.get("kwargs")
            if isinstance(value, dict) and not isinstance(value.get("body"), str):
                return None, value  # perhaps the command itself
            if not isinstance(value, dict):
                return None, None
            body = _inner_body(value["body"])
    except Exception:  # not UTF-8, not JSON, not base64, too deep: nothing plainly there
        return None, None
    return None, None


def _inner_body(body: str) -> str | bytes:
    """The body kept in a kombu envelope: its JSON text, or base64 of it (whatever the
    envelope claims its encoding is, it is what can be read that counts)."""
    try:
        json.loads(body)
        return body
    except ValueError:
        return base64.b64decode(body.encode("utf-8"))


def _protocol2_body(body: Any, parts: _Parts) -> tuple[list[Any], dict[str, Any], Any]:
    if isinstance(body, list):
        parts.args = body[0] if body else None
        parts.kwargs = body[1] if len(body) > 1 else None
    elif isinstance(body, dict):
        parts.kwargs = body
    if not isinstance(body, list) or len(body) != 3:
        shown = f"a list of {len(body)}" if isinstance(body, list) else f"a {_kind(body)}"
        raise _Refusal(Problem.SHAPE, f"body: {shown}; a Celery task body is [args, kwargs, embed]")
    args, kwargs, embed = body
    parts.args, parts.kwargs = args, kwargs
    _check_arguments(args, kwargs)
    if embed is not None and not isinstance(embed, dict):
        raise _Refusal(Problem.SHAPE, f"body.2 (embed): a {_kind(embed)}, not an object")
    return args, kwargs, embed


def _protocol1_body(body: Mapping[str, Any], parts: _Parts) -> tuple[list[Any], dict, Any]:
    args, kwargs = body.get("args", []), body.get("kwargs", {})
    parts.args, parts.kwargs = args, kwargs
    _check_arguments(args, kwargs)
    embed = {name: body.get(name) for name in WORKFLOW_PARTS}
    return args, kwargs, embed


def _check_arguments(args: Any, kwargs: Any) -> None:
    if not isinstance(args, list):
        raise _Refusal(Problem.SHAPE, f"body.args: a {_kind(args)}, not a list")
    if not isinstance(kwargs, dict):
        raise _Refusal(Problem.SHAPE, f"body.kwargs: a {_kind(kwargs)}, not an object")


def _check_workflow(embed: Any) -> None:
    if not embed:
        return
    for name in WORKFLOW_PARTS:
        if embed.get(name):
            raise _Refusal(
                Problem.SHAPE,
                f"body.embed.{name}: orderq commands do not start other tasks "
                "(callbacks, chains and chords are refused)",
            )


def _task_name(value: Any, rules: EnvelopeRules) -> str:
    if not isinstance(value, str) or not value:
        raise _Refusal(Problem.HEADER, _wrong("task", value, "a task name"))
    if value.startswith("celery."):
        raise _Refusal(
            Problem.TASK,
            f"task: {_clip(value)!r} is one of Celery's own tasks; orderq's queues carry "
            "orderq commands only",
        )
    if value not in rules.tasks:
        known = ", ".join(sorted(COMMANDS_BY_TASK))
        raise _Refusal(
            Problem.TASK, f"task: no command is sent to task {_clip(value)!r} (known: {known})"
        )
    return value


def _task_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise _Refusal(Problem.HEADER, _wrong("id", value, f"a task id of 1-{MAX_ID_LENGTH}"))
    if not is_text(value) or not value.isprintable():
        raise _Refusal(Problem.HEADER, "headers.id: not printable text")
    return value


def _retries(value: Any, rules: EnvelopeRules) -> int:
    if value is None:
        return 0
    if not _is_int(value) or not 0 <= value <= rules.max_retries:
        raise _Refusal(
            Problem.HEADER, _wrong("retries", value, f"a whole number 0-{rules.max_retries}")
        )
    return int(value)


def _time_limits(value: Any, rules: EnvelopeRules) -> list[float | None]:
    if value is None:
        return [None, None]
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _Refusal(
            Problem.TIME_LIMIT,
            _wrong("timelimit", value, "[hard, soft] in seconds (each a number or null)"),
        )
    limits: list[float | None] = []
    for label, limit, ceiling in (
        ("hard", value[0], rules.max_time_limit),
        ("soft", value[1], rules.max_soft_time_limit),
    ):
        if limit is None:
            limits.append(None)
            continue
        if not _is_number(limit) or not math.isfinite(limit) or limit <= 0:
            raise _Refusal(
                Problem.TIME_LIMIT, _wrong("timelimit", value, "positive numbers of seconds")
            )
        if limit < rules.min_time_limit:
            raise _Refusal(
                Problem.TIME_LIMIT,
                f"headers.timelimit: the {label} limit {limit:g} s is below the "
                f"{rules.min_time_limit:g} s floor (ORDERQ_MIN_MESSAGE_TIME_LIMIT_SECONDS)",
            )
        if limit > ceiling:
            raise _Refusal(
                Problem.TIME_LIMIT,
                f"headers.timelimit: the {label} limit {limit:g} s exceeds this worker's "
                f"{ceiling:g} s",
            )
        limits.append(float(limit))
    hard, soft = limits
    if hard is not None and soft is not None and soft >= hard:
        raise _Refusal(
            Problem.TIME_LIMIT,
            f"headers.timelimit: the soft limit ({soft:g} s) must be below the hard one "
            f"({hard:g} s)",
        )
    return limits


def _eta(value: Any, rules: EnvelopeRules, now: datetime) -> str | None:
    when = _timestamp("eta", value)
    if when is None:
        return None
    delay = (when - now).total_seconds()
    if delay > rules.max_delay_seconds:
        raise _Refusal(
            Problem.SCHEDULE,
            f"headers.eta: {when.isoformat()} is {delay:.0f} s away; a message may wait at "
            f"most {rules.max_delay_seconds:g} s (ORDERQ_MAX_MESSAGE_DELAY_SECONDS)",
        )
    return when.isoformat()


def _check_expiry(value: Any, now: datetime) -> None:
    when = _timestamp("expires", value)
    if when is not None and when <= now:
        raise _Refusal(
            Problem.EXPIRED,
            f"expires: the message expired at {when.isoformat()}, before a worker received "
            f"it ({now.isoformat(timespec='seconds')})",
            rejection=EXPIRED,
        )


def _timestamp(name: str, value: Any) -> datetime | None:
    """An ISO 8601 header as Celery reads it (naive means UTC), or None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):  # an AMQP timestamp field
        when = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            when = isoparse(value)
        except (ValueError, OverflowError):
            raise _Refusal(Problem.HEADER, _wrong(name, value, "an ISO 8601 time")) from None
    else:
        raise _Refusal(Problem.HEADER, _wrong(name, value, "an ISO 8601 time"))
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=UTC)
    try:
        when.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _Refusal(Problem.HEADER, f"headers.{name}: {value!r} is out of range") from None
    return when


# -- helpers ---------------------------------------------------------------------------


def _quarantined(parts: _Parts, problem: Problem, reason: str, rejection: str = INVALID_COMMAND):
    try:
        command = carried_command(parts.args, parts.kwargs)
    except Exception:  # the parts are whatever the message held
        command = None
    return Quarantined(
        problem=problem,
        reason=reason,
        key=storable_key(command.get("key")) if command is not None else None,
        command=command,
        task=parts.task,
        task_id=parts.task_id,
        rejection=rejection,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names: dict[type, str] = {
        dict: "JSON object",
        list: "JSON array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        bytes: "byte string",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _clip(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= width else text[: width - 1] + "…"


def _short_text(value: Any) -> str | None:
    return _clip(value, MAX_ID_LENGTH) if isinstance(value, str) and value else None


def _wrong(name: str, value: Any, expected: str) -> str:
    shown = "missing" if value is None else f"{_clip(value, 60)} (a {_kind(value)})"
    return f"headers.{name}: {shown}; expected {expected}"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\0")
    return text if len(text) <= 1000 else text[:999] + "…"


def _empty_embed() -> dict[str, Any]:
    return dict.fromkeys(WORKFLOW_PARTS)
