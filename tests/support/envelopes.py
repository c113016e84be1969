"""Hypothesis strategies for broker messages as a careless or hostile upstream sends them.

A generated `Sent` is one message: its headers, body bytes, content type and encoding,
and what the generator knows about it — the unique `marker` (the command's key when it
has one, and always somewhere in the message so its quarantine row can be found) and
`key`, set when the message *plainly* carries a usable key: the body is intact JSON
and a command object with that key sits where a sender would put it. Such a key must
end with exactly one outcome, whatever else is wrong with the message.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from producers.commands import COMMANDS_BY_TASK

# Hypothesis keeps caches in ./.hypothesis; the tests leave nothing in the checkout.
_HOME = tempfile.mkdtemp(prefix="orderq-hypothesis-")
set_hypothesis_home_dir(_HOME)
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

COMMAND_TASKS = sorted(COMMANDS_BY_TASK)
OTHER_TASKS = [
    "celery.chord_unlock",
    "celery.backend_cleanup",
    "celery.ping",
    "orderq.orders.refund",
    "",
]
#: characters text is drawn from: ASCII, controls, NUL, a snowman, an emoji, both halves
#: of a surrogate pair, a right-to-left override (an explicit alphabet also spares
#: hypothesis building its Unicode tables on every run)
ALPHABET = st.sampled_from(list('aZ09 -_.:/"{}[]\t\n\x00\x1b\u2603\U0001f600\ud83d\ude00\u202e'))
TEXT = st.text(alphabet=ALPHABET, max_size=20)
#: values of the wrong type (or shape) for any header or field
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["\ud83d", "nul\x00", "x" * 5000, "next tuesday", "2001-01-01T00:00:00"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(TEXT, st.integers(), max_size=3),
)


@dataclass(frozen=True)
class Sent:
    """One generated message (see the module docstring)."""

    marker: str
    headers: Any
    body: bytes
    content_type: Any
    content_encoding: Any
    key: str | None  # a usable key the message plainly carries

    def as_dict(self) -> dict[str, Any]:
        return {"headers": self.headers, "body": self.body, "key": self.key}


def _when(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@st.composite
def commands(draw: st.DrawFn, key: str, skus: list[str]) -> tuple[str, dict[str, Any]]:
    """(task name, command object): valid ones on `skus`, invalid ones, odd text."""
    kind = draw(st.sampled_from(["place", "place", "restock", "upsert", "invalid", "text"]))
    sku = draw(st.sampled_from(skus))
    qty = draw(st.integers(min_value=1, max_value=4))
    if kind == "place":
        lines = [{"sku": sku, "qty": qty}]
        command = {"type": "place_order", "key": key, "customer_ref": "c-1", "lines": lines}
        return "orderq.orders.place_order", command
    if kind == "restock":
        return "orderq.orders.restock_product", {
            "type": "restock_product",
            "key": key,
            "sku": sku,
            "qty": qty,
        }
    if kind == "upsert":  # a new product each time: never touches the run's stock
        return "orderq.orders.upsert_product", {
            "type": "upsert_product",
            "key": key,
            "sku": key.rsplit("-", 1)[-1],
            "name": "Gen",
            "price_cents": qty,
        }
    field_value = draw(ODD_VALUES)
    if kind == "text":
        field_value = draw(st.sampled_from(["cut \ud83d", "\udc00 alone", "ok \u2603"]))
    return "orderq.orders.place_order", {
        "type": "place_order",
        "key": key,
        "customer_ref": field_value,
        "lines": [{"sku": sku, "qty": qty}],
    }


@st.composite
def headers_for(draw: st.DrawFn, task: str, marker: str) -> Any:
    """Celery headers for `task`, each possibly wrong; sometimes not a table at all."""
    if draw(st.integers(min_value=0, max_value=30)) == 0:
        return draw(st.sampled_from([None, [marker], marker, 7]))
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task,
        "id": f"id-{marker}",
        "retries": 0,
        "eta": None,
        "expires": None,
        "timelimit": [None, None],
    }
    mutations = draw(
        st.lists(
            st.sampled_from(
                ["task", "id", "retries", "timelimit", "eta", "expires", "drop", "extra"]
            ),
            max_size=2,
            unique=True,
        )
    )
    for mutation in mutations:
        if mutation == "task":
            headers["task"] = draw(
                st.one_of(st.sampled_from(COMMAND_TASKS + OTHER_TASKS), ODD_VALUES)
            )
        elif mutation == "id":
            headers["id"] = draw(ODD_VALUES)
        elif mutation == "retries":
            headers["retries"] = draw(st.one_of(st.integers(0, 5), ODD_VALUES))
        elif mutation == "timelimit":
            headers["timelimit"] = draw(
                st.one_of(
                    st.sampled_from([[60, 50], [None, 30], [0.001, None], [10**9, None]]),
                    ODD_VALUES,
                )
            )
        elif mutation == "eta":
            headers["eta"] = draw(
                st.one_of(st.sampled_from([_when(-60), _when(1), _when(86_400)]), ODD_VALUES)
            )
        elif mutation == "expires":
            headers["expires"] = draw(
                st.one_of(st.sampled_from([_when(-60), _when(600)]), ODD_VALUES)
            )
        elif mutation == "drop":
            headers.pop(draw(st.sampled_from(sorted(headers))), None)
        else:
            headers[draw(st.text(alphabet=ALPHABET, min_size=1, max_size=8))] = draw(ODD_VALUES)
    return headers


@st.composite
def messages(draw: st.DrawFn, skus: list[str]) -> Sent:
    """One message: a command (valid or not) in a body (intact or not) with headers,
    content type and encoding (right or not)."""
    marker = f"GEN-{uuid.uuid4().hex[:12].upper()}"
    task, command = draw(commands(marker, skus))
    headers = draw(headers_for(task, marker))
    shape = draw(
        st.sampled_from(
            ["proto2"] * 6
            + ["kwargs", "proto1", "pair", "args-object", "bare", "raw", "deep", "nan"]
        )
    )
    key: str | None = marker
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    if shape == "proto2":
        body = json.dumps([[command], {}, embed])
    elif shape == "kwargs":
        body = json.dumps([[], command, embed])
    elif shape == "proto1":
        body = json.dumps({"task": task, "id": f"id-{marker}", "args": [command], "kwargs": {}})
        if isinstance(headers, dict):
            headers = {name: value for name, value in headers.items() if name != "task"}
    elif shape == "pair":
        body = json.dumps([[command], {}])
    elif shape == "args-object":
        body = json.dumps([command, {}, embed])
    elif shape == "bare":  # the command as the whole body
        body = json.dumps(command)
    elif shape == "raw":
        junk = draw(st.binary(max_size=40))
        body_bytes = junk + marker.encode() + junk
        return Sent(marker, headers, body_bytes, *draw(_content()), key=None)
    elif shape == "deep":
        nested: Any = {}
        for _ in range(draw(st.integers(min_value=40, max_value=400))):
            nested = [nested]
        body = json.dumps([[command, nested], {}, embed])
    else:
        body = json.dumps([[command], {}, embed]).replace('"qty": 1', '"qty": NaN')
    return Sent(marker, headers, body.encode(), *draw(_content()), key=key)


@st.composite
def _content(draw: st.DrawFn) -> tuple[Any, Any]:
    if draw(st.integers(min_value=0, max_value=8)) > 0:
        return "application/json", draw(st.sampled_from(["utf-8", "utf-8", "UTF-8", None]))
    return (
        draw(st.sampled_from(["text/plain", "application/x-python-serialize", None, ""])),
        draw(st.sampled_from(["utf-8", "latin-1", "binary", None])),
    )
