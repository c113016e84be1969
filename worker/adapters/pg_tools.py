"""PostgreSQL's client programs (pg_dump, pg_restore), matched to the server's version.

The one place orderq runs external binaries against the database: `orderq db backup`
/ `restore` (operator side) and the restore drill (the maintenance worker) go through
it. pg_dump refuses a server newer than itself, and a pg_restore newer than the
server may write settings the server does not know; so the tools are looked up by the
server's major version:

1. `ORDERQ_PG_BIN_DIR` (and any folder the caller adds, e.g. the embedded server's);
2. Debian/Ubuntu's `/usr/lib/postgresql/<major>/bin`;
3. the `PATH`.

The first with the server's major version wins. Failing that, a newer one is used
(with a note: PostgreSQL's tools read and write older servers); an older one only
makes `PgToolMismatch`, naming what was found and what to install.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from producers.database import normalize_database_url

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class PgToolError(RuntimeError):
    """A client program is missing, does not match, failed or ran out of time."""


class PgToolMismatch(PgToolError):
    """No client program of a version that can work with the server."""


@dataclass(frozen=True)
class PgTool:
    name: str
    path: Path
    major: int
    note: str = ""  # set when the version is not the server's own


def server_major(engine: Engine) -> int:
    """The server's major version (15 for 15.4)."""
    with engine.connect() as connection:
        return int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10_000


def tool_major(path: Path) -> int | None:
    """`pg_dump --version` -> 15; None if it does not run or say."""
    try:
        output = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    found = _VERSION.search(output)
    return int(found.group(1)) if found else None


def _candidates(name: str, major: int, folders: Iterable[Path]) -> list[Path]:
    paths = [Path(folder) / name for folder in folders]
    paths.append(Path(f"/usr/lib/postgresql/{major}/bin") / name)
    debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    paths.extend(debian)
    on_path = shutil.which(name)
    if on_path:
        paths.append(Path(on_path))
    unique: list[Path] = []
    for path in paths:
        if path.is_file() and os.access(path, os.X_OK) and path not in unique:
            unique.append(path)
    return unique


def find_tool(name: str, major: int, folders: Sequence[Path] = ()) -> PgTool:
    """The `name` program for a server of version `major` (see the module docstring)."""
    found = [(path, tool_major(path)) for path in _candidates(name, major, folders)]
    for path, version in found:
        if version == major:
            return PgTool(name, path, major)
    newer = sorted(
        ((version, path) for path, version in found if version and version > major),
        key=lambda pair: pair[0],
    )
    if newer:
        version, path = newer[0]
        return PgTool(name, path, version, note=f"{name} {version} for a PostgreSQL {major} server")
    seen = ", ".join(f"{path} ({version or '?'})" for path, version in found) or "none"
    raise PgToolMismatch(
        f"no {name} for PostgreSQL {major} (found: {seen}); install the PostgreSQL "
        f"{major} client tools (Debian: postgresql-client-{major}) or set ORDERQ_PG_BIN_DIR"
    )


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for `url` without its password, and the environment carrying it
    (a password on a command line is visible to every user of the host)."""
    parsed = make_url(normalize_database_url(url)).set(drivername="postgresql")
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    uri = parsed.set(password=None).render_as_string(hide_password=False)
    return uri, env


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_tool(
    tool: PgTool,
    arguments: Sequence[str],
    url: str,
    *,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run `tool` against `url` (passed as --dbname), feeding each stderr line to
    `on_line`; raise `PgToolError` with the tail of its output if it fails or outlives
    `timeout` seconds (then it is killed)."""
    uri, env = libpq_target(url)
    command = [str(tool.path), *arguments, f"--dbname={uri}"]
    tail: list[str] = []
    with subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,  # its own process group: the timeout kills all of it
    ) as process:
        # a timer, not a check between lines: a tool that hangs silently is killed too
        killer = (
            threading.Timer(timeout, _kill_group, (process.pid,)) if timeout is not None else None
        )
        if killer is not None:
            killer.daemon = True
            killer.start()
        try:
            assert process.stderr is not None
            for line in process.stderr:
                tail = [*tail[-20:], line.rstrip()]
                if on_line is not None:
                    on_line(line.rstrip())
            code = process.wait()
        finally:
            if killer is not None:
                killer.cancel()
    if killer is not None and killer.finished.is_set() and code < 0:
        raise PgToolError(f"{tool.name} did not finish within {timeout:g}s (killed)")
    if code != 0:
        detail = " | ".join(line for line in tail if line)[-600:]
        raise PgToolError(f"{tool.name} exited with {code}: {detail}")
