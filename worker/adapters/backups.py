"""Backup files and the databases they are restored into.

A backup is a pg_dump custom-format archive `NAME` with its checksum next to it in
`NAME.sha256` (the `sha256sum` format, so `sha256sum -c NAME.sha256` checks it too).
pg_dump reads every table in one snapshot (a REPEATABLE READ transaction), so a backup
taken while commands run is a consistent instant of the database: every committed
command is in it with all its rows, every later one is absent with all of its.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from producers.database import normalize_database_url
from worker.adapters.pg_tools import PgTool, PgToolError, run_tool

CHECKSUM_SUFFIX = ".sha256"
#: what `orderq db backup` writes while pg_dump runs; renamed when complete
PARTIAL_SUFFIX = ".partial"

_DUMPING = re.compile(r'dumping contents of table "?([^"\s]+)"?')
_RESTORING = re.compile(r'processing data for table "?([^"\s]+)"?')

Progress = Callable[[int, int, str], None]  # (tables done, tables in all, current table)


class ChecksumMismatch(PgToolError):
    """The backup file is not the one its checksum was written for."""


def checksum_path(backup: Path) -> Path:
    return backup.with_name(backup.name + CHECKSUM_SUFFIX)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(backup: Path) -> str:
    value = sha256_of(backup)
    checksum_path(backup).write_text(f"{value}  {backup.name}\n")
    return value


def check_checksum(backup: Path) -> str:
    """The backup's sha256 if it matches its checksum file; `ChecksumMismatch` if not,
    `FileNotFoundError` if there is no checksum file."""
    recorded = checksum_path(backup).read_text().split()[0].lower()
    actual = sha256_of(backup)
    if actual != recorded:
        raise ChecksumMismatch(
            f"{backup} does not match {checksum_path(backup).name} "
            f"(sha256 {actual[:12]}…, recorded {recorded[:12]}…): the file is damaged "
            "or not the one that was backed up"
        )
    return actual


def latest_backup(folder: Path) -> Path | None:
    """The newest complete backup in `folder` (one with its checksum file)."""
    backups = [
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.endswith((CHECKSUM_SUFFIX, PARTIAL_SUFFIX))
        and checksum_path(path).is_file()
    ]
    return max(backups, key=lambda path: path.stat().st_mtime, default=None)


def _table_counter(pattern: re.Pattern[str], total: int, progress: Progress | None):
    done = [0]

    def on_line(line: str) -> None:
        found = pattern.search(line)
        if found and progress is not None:
            done[0] += 1
            progress(done[0], total, found.group(1))

    return on_line


def dump(
    tool: PgTool,
    url: str,
    target: Path,
    *,
    tables: int = 0,
    lock_wait_seconds: int = 30,
    progress: Progress | None = None,
) -> str:
    """Write a custom-format backup of `url` to `target` plus its checksum file; return
    the sha256. Written to `target.partial` first: `target` exists only when complete.

    `lock_wait_seconds` bounds the wait for a table lock (a migration holding one):
    the backup fails instead of queueing commands behind it.
    """
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    try:
        run_tool(
            tool,
            [
                "--format=custom",
                "--verbose",
                f"--lock-wait-timeout={lock_wait_seconds}s",
                f"--file={partial}",
            ],
            url,
            on_line=_table_counter(_DUMPING, tables, progress),
        )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return write_checksum(target)


def restore(
    tool: PgTool,
    backup: Path,
    url: str,
    *,
    tables: int = 0,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> None:
    """Restore `backup` into the (empty) database at `url` in one transaction: a failed
    restore leaves the database as empty as it was. Ownership and grants are not
    restored (the restoring role owns everything)."""
    run_tool(
        tool,
        [
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--verbose",
            str(backup),
        ],
        url,
        timeout=timeout,
        on_line=_table_counter(_RESTORING, tables, progress),
    )


# -- databases on the server ---------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseState:
    exists: bool
    relations: int = 0  # tables, views and sequences outside the system schemas

    @property
    def empty(self) -> bool:
        return self.relations == 0


def _admin(url: str):
    """Autocommit engine on the server's `postgres` database (CREATE / DROP DATABASE)."""
    server = make_url(normalize_database_url(url)).set(database="postgres")
    return create_engine(server, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)


def _quoted(engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


def database_state(url: str) -> DatabaseState:
    name = make_url(normalize_database_url(url)).database or ""
    admin = _admin(url)
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
    finally:
        admin.dispose()
    if not exists:
        return DatabaseState(False)
    engine = create_engine(normalize_database_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            relations = connection.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND n.nspname NOT LIKE 'pg_toast%'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return DatabaseState(True, int(relations))


def create_database(url: str) -> None:
    name = make_url(normalize_database_url(url)).database or ""
    admin = _admin(url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {_quoted(admin, name)}"))
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the database at `url` if it exists, ending its sessions (PostgreSQL 13+)."""
    name = make_url(normalize_database_url(url)).database or ""
    admin = _admin(url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {_quoted(admin, name)} WITH (FORCE)"))
    finally:
        admin.dispose()


def count_tables(url: str, schema: str = "public") -> int:
    """User tables in `schema` (the denominator of the progress bars)."""
    engine = create_engine(normalize_database_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM pg_tables WHERE schemaname = :schema"),
                    {"schema": schema},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def row_counts(url: str, tables: Sequence[str]) -> dict[str, int]:
    """Exact row counts of `tables` (those that exist) in the database at `url`."""
    engine = create_engine(normalize_database_url(url), poolclass=pool.NullPool)
    counts: dict[str, int] = {}
    try:
        with engine.connect() as connection:
            present = set(
                connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                ).scalars()
            )
            for table in tables:
                if table in present:
                    counts[table] = int(
                        connection.execute(
                            text(f"SELECT count(*) FROM {_quoted(engine, table)}")
                        ).scalar_one()
                    )
    finally:
        engine.dispose()
    return counts


@contextlib.contextmanager
def scratch_database(url: str):
    """A fresh empty database at `url` for the block, dropped after it."""
    drop_database(url)
    create_database(url)
    try:
        yield url
    finally:
        drop_database(url)
