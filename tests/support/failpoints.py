"""The test's side of the failpoint handshake (worker/service/failpoints.py).

A process started with `ORDERQ_FAILPOINT_DIR=<folder>` leaves one record in the folder
per firing, before the action runs. A test waits for a record instead of reading a log:

    hit = worker.failpoints.wait_for(victim.key)[0]   # it holds its locks now
    sigkill(hit.pid)

and releases `pause` failpoints once the race it stages is really set up:

    with records.released_at_exit():
        ... submit the commands ...
        records.wait_for("RACE-")                     # the first holds the row lock
        wait_until_sessions_wait(engine, 3)           # the others queue behind it
        records.release_all()
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.eventually import eventually
from worker.service.failpoints import RELEASE_ALL


@dataclass(frozen=True)
class FailpointHit:
    """One firing: where, what, for which key and attempt, in which process."""

    point: str
    action: str
    key: str
    attempt: int
    pid: int
    record: Path


class FailpointRecords:
    """The firings recorded in one `ORDERQ_FAILPOINT_DIR` folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def hits(self, key: str = "") -> list[FailpointHit]:
        """Firings for keys starting with `key`, oldest first."""
        found = []
        for record in sorted(self.directory.glob("*.hit")):
            fields = json.loads(record.read_text())
            if fields["key"].startswith(key):
                found.append(FailpointHit(**fields, record=record))
        return found

    def wait_for(self, key: str = "", count: int = 1, timeout: float = 30.0) -> list[FailpointHit]:
        """The first `count` firings for keys starting with `key`, once there are that many."""
        hits = eventually(
            lambda: self.hits(key),
            until=lambda found: len(found) >= count,
            what=f"{count} failpoint firing(s) for {key or 'any key'} in {self.directory}",
            timeout=timeout,
        )
        return hits[:count]

    def release(self, hit: FailpointHit) -> None:
        """Let one paused firing go on."""
        hit.record.with_suffix(".release").touch()

    def release_all(self) -> None:
        """Let every paused firing go on, and every later one pass without stopping."""
        (self.directory / RELEASE_ALL).touch()

    @contextlib.contextmanager
    def released_at_exit(self) -> Iterator[FailpointRecords]:
        """Release everything when the block ends, even if it fails (no thread or
        process is left paused behind a failed test)."""
        try:
            yield self
        finally:
            self.release_all()
