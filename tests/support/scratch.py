"""The session's scratch folder: every file or folder a test creates outside its own
`tmp_path` — worker logs, failpoint records, beat schedules, private redis-servers,
embedded data folders — lives under one folder, removed when the session ends.

Logs are kept for failing tests only: `logs.keep_current()` (called by conftest when a
test fails) keeps the logs of every process that ran during that test and returns their
paths; the rest goes with the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.names import NAMESPACE

ROOT = Path(tempfile.gettempdir()) / f"orderq-scratch-{NAMESPACE}"
#: the pytest process that owns the folder (the leftovers check skips live sessions)
OWNER = "owner.pid"


def _root() -> Path:
    if not ROOT.exists():
        ROOT.mkdir(mode=0o700)
        (ROOT / OWNER).write_text(str(os.getpid()))
    return ROOT


def scratch_path(name: str) -> Path:
    """A path in the session's scratch folder, not created."""
    return _root() / name


def scratch_dir(prefix: str) -> Path:
    """A new, empty folder in the session's scratch folder."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_root()))


def scratch_file(prefix: str, suffix: str = "") -> Path:
    """A new, empty file in the session's scratch folder."""
    descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=_root())
    os.close(descriptor)
    return Path(name)


@dataclass
class Logs:
    """Log files of processes the tests start, and which of them to keep."""

    _running: dict[Path, Callable[[], bool]] = field(default_factory=dict)
    _current: set[Path] = field(default_factory=set)
    #: logs (and folders) kept for failing tests
    kept: list[Path] = field(default_factory=list)

    def register(self, path: Path, is_running: Callable[[], bool]) -> None:
        """A log a process writes; it belongs to the test that is running now."""
        self._running[path] = is_running
        self._current.add(path)

    def test_starts(self) -> None:
        """Processes still running when a test starts (session workers) are part of it."""
        self._running = {path: alive for path, alive in self._running.items() if alive()}
        self._current = set(self._running)

    def keep_current(self, *more: Path) -> list[Path]:
        """Keep the logs of the test that just failed (and `more`); return their paths."""
        paths = sorted({*self._current, *more})
        self.kept.extend(path for path in paths if path not in self.kept)
        return paths


LOGS = Logs()


def remove_all_but(keep: list[Path]) -> None:
    """Delete the scratch folder except the files and folders in `keep`; the folder
    itself goes if nothing is kept."""
    if not ROOT.exists():
        return
    kept = {path.resolve() for path in keep if path.exists()}
    if not kept:
        shutil.rmtree(ROOT, ignore_errors=True)
        return
    on_the_way = {parent for path in kept for parent in path.parents}
    for path in sorted(ROOT.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        resolved = path.resolve()
        if resolved in kept or resolved in on_the_way or kept & set(resolved.parents):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
