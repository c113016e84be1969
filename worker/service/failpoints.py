"""Deterministic fault injection for the fault and end-to-end tests.

Off unless `ORDERQ_FAILPOINTS` is set. The value is a `;`-separated list of
`point=action[*times]@key-prefix` entries, for example

    before_commit=raise*1@fp-          # first attempt of keys starting fp- fails (transient)
    before_commit=bug@oops-            # an error the taxonomy does not know (unknown)
    after_lock=sleep:3@slow-           # hold the row locks for 3 s
    after_lock=pause@race-             # hold the row locks until the test releases them
    before_commit=kill@poison-         # the process is SIGKILLed (like the OOM killer)
    before_commit=exit@crash-          # the process exits at once, status 70 (a crash)
    after_lock=hang*1@stuck-           # ignores the soft time limit; the hard one kills it

`*times` limits the action to the first N attempts of each key. Points: `after_claim`
(ledger row claimed), `after_lock` (business rows locked), `before_commit` (all
changes flushed, transaction still open); and `receive`, in the worker's main process
as a message arrives, before the raw-message guard, matched on the message's task id
(a bug below the guard: `receive=bug@crash-` makes the worker stop on an error).


The handshake with a test: with `ORDERQ_FAILPOINT_DIR` set, every firing first leaves a
record there, `<name>.hit` (JSON: point, action, key, attempt, pid), written before the
action runs — so a test can wait for "a process is at the failpoint for key K" and learn
its pid without reading any log (tests/support/failpoints.py). `pause[:N]` needs the
folder: the firing waits until the test creates `<name>.release` next to its record, or
`release-all` in the folder, and raises `PauseNotReleased` after N seconds (default 60).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from worker.adapters.errors import TransientError

log = logging.getLogger(__name__)

RELEASE_ALL = "release-all"


class InjectedFault(TransientError):
    """The failure a `raise` failpoint throws; transient so the command is retried."""


class InjectedBug(RuntimeError):
    """The failure a `bug` failpoint throws: an error the taxonomy does not know."""


class PauseNotReleased(InjectedBug):
    """A `pause` failpoint that nobody released in time (a test that lost track of it)."""


ACTIONS = frozenset({"raise", "bug", "kill", "exit", "sleep", "hang", "pause"})

_firings = itertools.count()  # names records uniquely within a process (threads too)


@dataclass(frozen=True)
class Failpoint:
    point: str
    action: str
    argument: str | None
    times: int | None
    key_prefix: str

    def matches(self, point: str, key: str, attempt: int) -> bool:
        return (
            self.point == point
            and key.startswith(self.key_prefix)
            and (self.times is None or attempt <= self.times)
        )

    @property
    def label(self) -> str:
        return f"{self.point}={self.action}" + (f":{self.argument}" if self.argument else "")

    def fire(self, key: str, record: Path | None) -> None:
        """Do the action; `record` is this firing's `.hit` file, if the folder is set."""
        log.warning("failpoint %s fired for %s in pid %d", self.label, key, os.getpid())
        if self.action == "raise":
            raise InjectedFault(f"injected fault at {self.point} for {key}")
        if self.action == "bug":
            raise InjectedBug(f"injected bug at {self.point} for {key}")
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.action == "exit":
            os._exit(70)  # no cleanup, no rollback: the process is simply gone
        if self.action == "sleep":
            time.sleep(float(self.argument or "1"))
        if self.action == "hang":
            # Deaf to the soft time limit, like a call stuck in C: only the hard limit
            # (the pool killing the process) ends it.
            deadline = time.monotonic() + float(self.argument or "3600")
            while time.monotonic() < deadline:
                try:
                    time.sleep(0.05)
                except Exception:  # SoftTimeLimitExceeded
                    continue
        if self.action == "pause" and record is not None:
            _wait_for_release(record, float(self.argument or "60"), f"{self.label} for {key}")


def _wait_for_release(record: Path, seconds: float, what: str) -> None:
    releases = (record.with_suffix(".release"), record.parent / RELEASE_ALL)
    deadline = time.monotonic() + seconds
    while not any(path.exists() for path in releases):
        if time.monotonic() > deadline:
            raise PauseNotReleased(f"failpoint {what} was not released within {seconds:g}s")
        time.sleep(0.01)


def parse_failpoints(spec: str) -> tuple[Failpoint, ...]:
    """Parse `ORDERQ_FAILPOINTS`; raise ValueError naming the bad entry."""
    failpoints = []
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        try:
            head, key_prefix = entry.split("@", 1) if "@" in entry else (entry, "")
            point, action = head.split("=", 1)
            times = None
            if "*" in action:
                action, count = action.split("*", 1)
                times = int(count)
            action, _, argument = action.partition(":")
        except ValueError:
            raise ValueError(f"bad failpoint {entry!r}: expected point=action[*n]@prefix") from None
        if action not in ACTIONS:
            raise ValueError(
                f"bad failpoint {entry!r}: action must be one of {', '.join(sorted(ACTIONS))}"
            )
        failpoints.append(Failpoint(point, action, argument or None, times, key_prefix))
    return tuple(failpoints)


class Failpoints:
    """The active failpoints of this process, and where their firings are recorded."""

    def __init__(self, spec: str = "", record_dir: Path | None = None) -> None:
        self._failpoints = parse_failpoints(spec)
        self._record_dir = record_dir
        if record_dir is None and any(f.action == "pause" for f in self._failpoints):
            raise ValueError("a pause failpoint needs ORDERQ_FAILPOINT_DIR (its release)")

    def hit(self, point: str, key: str, attempt: int) -> None:
        for failpoint in self._failpoints:
            if failpoint.matches(point, key, attempt):
                failpoint.fire(key, self._record(failpoint, key, attempt))

    def _record(self, failpoint: Failpoint, key: str, attempt: int) -> Path | None:
        if self._record_dir is None:
            return None
        pid = os.getpid()
        name = f"{time.time_ns()}-{pid}-{next(_firings)}"
        record = {"point": failpoint.point, "action": failpoint.action, "key": key}
        record |= {"attempt": attempt, "pid": pid}
        # written aside and renamed: a reader never sees half a record
        partial = self._record_dir / f".{name}.partial"
        partial.write_text(json.dumps(record))
        return partial.rename(self._record_dir / f"{name}.hit")
