"""`orderq db backup | restore | verify | drills`: backups you can trust, and proof.

All four go straight to PostgreSQL (ORDERQ_ADMIN_DATABASE_URL when set, else
DATABASE_URL): pg_dump and pg_restore cannot work through a transaction-pooling
PgBouncer. docs/backup.md explains the files, the checks and the drill.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import pool
from sqlalchemy.engine import make_url

from orderq.cli.console import console, err_console, fail, resolved_settings
from orderq.cli.db import db_app
from orderq.cli.values import whole_number
from orderq.settings import Settings
from producers.database import build_engine, describe_url, normalize_database_url

_DB_HELP = "A database name on the configured server, or a full PostgreSQL URL."


def _admin_url(settings: Settings) -> str:
    return normalize_database_url(settings.require_admin_database_url())


def _database_url(settings: Settings, database: str | None) -> str:
    """`database` (a name on the configured server, or a URL), or the configured one."""
    base = make_url(_admin_url(settings))
    if database is None:
        return base.render_as_string(hide_password=False)
    if "://" in database:
        try:
            return normalize_database_url(database)
        except Exception as error:
            fail(f"not a PostgreSQL URL: {database!r} ({error})")
    if not database.strip() or "/" in database:
        fail(f"not a database name: {database!r}")
    return base.set(database=database).render_as_string(hide_password=False)


def _tool(settings: Settings, name: str, url: str):
    """pg_dump / pg_restore matching the server at `url` (see worker.adapters.pg_tools)."""
    from orderq.embedded import is_embedded
    from orderq.embedded.postgres import binaries_dir
    from worker.adapters.pg_tools import PgToolError, find_tool, server_major

    folders = [Path(settings.pg_bin_dir)] if settings.pg_bin_dir else []
    if is_embedded(url) and (embedded := binaries_dir()) is not None:
        folders.insert(0, embedded)  # the embedded server's own, of its version
    engine = build_engine(settings, url=url, poolclass=pool.NullPool)
    try:
        tool = find_tool(name, server_major(engine), folders)
    except PgToolError as error:
        fail(str(error), code=1)
    except Exception as error:
        fail(f"cannot reach {describe_url(url)}: {_one_line(error)}", code=1)
    finally:
        engine.dispose()
    if tool.note:
        err_console.print(f"[yellow]note:[/] {tool.note}", highlight=False)
    return tool


def _one_line(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {' '.join(str(error).split())}"[:400]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[table]}"),
        console=err_console,
        transient=True,
    )


@db_app.command("backup")
def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the backup (custom format).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Back up the database while it runs: one consistent snapshot (pg_dump, custom
    format), then FILE.sha256 next to it."""
    from worker.adapters.backups import count_tables, dump
    from worker.adapters.pg_tools import PgToolError

    if file.exists() and not force:
        fail(f"{file} exists: pass --force to replace it, or choose another name")
    if not file.parent.is_dir():
        fail(f"no such folder: {file.parent}")
    settings = resolved_settings()
    url = _admin_url(settings)
    tool = _tool(settings, "pg_dump", url)
    started = time.monotonic()
    with _progress() as progress:
        task = progress.add_task("dumping", total=count_tables(url) or None, table="")
        try:
            checksum = dump(
                tool,
                url,
                file,
                tables=0,
                progress=lambda done, _total, table: progress.update(
                    task, completed=done, table=table
                ),
            )
        except PgToolError as error:
            fail(f"backup failed, nothing written: {error}", code=1)
    size = file.stat().st_size
    console.print(
        f"backed up {describe_url(url)} to [bold]{file}[/] ({size / 1e6:.1f} MB, "
        f"{time.monotonic() - started:.1f}s, {tool.path.name} {tool.major})\n"
        f"sha256 {checksum} -> {file.name}.sha256"
    )


@db_app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `orderq db backup`.")],
    into: Annotated[str, typer.Option("--into", help=f"The database to create. {_DB_HELP}")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Drop and re-create the database if it holds anything."),
    ] = False,
    no_checksum: Annotated[
        bool, typer.Option("--no-checksum", help="Restore a file that has no .sha256 next to it.")
    ] = False,
) -> None:
    """Restore a backup into a new database (never over one that holds data, unless
    --force), in one transaction: a failed restore leaves nothing half-written."""
    from worker.adapters.backups import (
        ChecksumMismatch,
        check_checksum,
        checksum_path,
        create_database,
        database_state,
        drop_database,
    )
    from worker.adapters.backups import (
        restore as restore_backup,
    )
    from worker.adapters.pg_tools import PgToolError

    if not file.is_file():
        fail(f"no such backup file: {file}")
    if not checksum_path(file).is_file() and not no_checksum:
        fail(f"{checksum_path(file)} is missing: pass --no-checksum to restore without checking")
    settings = resolved_settings()
    target = _database_url(settings, into)
    if checksum_path(file).is_file():
        try:
            check_checksum(file)
        except ChecksumMismatch as error:
            fail(str(error), code=1)
    try:
        state = database_state(target)
    except Exception as error:
        fail(f"cannot reach {describe_url(target)}: {_one_line(error)}", code=1)
    if state.exists and not state.empty and not force:
        fail(
            f"database {make_url(target).database} exists and holds {state.relations} "
            "tables/sequences: restore into a new name, or pass --force to replace it",
            code=1,
        )
    tool = _tool(settings, "pg_restore", _admin_url(settings))
    if state.exists and not state.empty:
        drop_database(target)
    if not (state.exists and state.empty):
        create_database(target)
    started = time.monotonic()
    with _progress() as progress:
        task = progress.add_task("restoring", total=None, table="")
        try:
            restore_backup(
                tool,
                file,
                target,
                progress=lambda done, _total, table: progress.update(
                    task, completed=done, table=table
                ),
            )
        except PgToolError as error:
            fail(f"restore failed, {make_url(target).database} left empty: {error}", code=1)
    console.print(
        f"restored [bold]{file}[/] into {describe_url(target)} "
        f"in {time.monotonic() - started:.1f}s\n"
        f"check it: orderq db verify {make_url(target).database}"
    )


@db_app.command("verify")
def verify(
    database: Annotated[str | None, typer.Argument(help=f"Default: orderq's. {_DB_HELP}")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check every invariant of the data; exit 1 naming each one that fails."""
    from worker.adapters import integrity

    settings = resolved_settings(quiet=as_json)
    url = _database_url(settings, database)
    engine = build_engine(settings, url=url, poolclass=pool.NullPool)
    started = time.monotonic()
    try:
        result = integrity.verify(engine)
    except Exception as error:
        fail(f"could not verify {describe_url(url)}: {_one_line(error)}", code=1)
    finally:
        engine.dispose()
    elapsed = time.monotonic() - started
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "database": make_url(url).database,
                    "ok": result.ok,
                    "seconds": round(elapsed, 3),
                    "violations": result.violations,
                }
            )
        )
    else:
        table = Table(title=f"invariants of {make_url(url).database}", title_justify="left")
        for column in ("invariant", "holds", "violations", "e.g."):
            table.add_column(column, overflow="fold")
        for name, items in result.violations.items():
            table.add_row(
                name,
                "[green]yes[/]" if not items else "[red]NO[/]",
                str(len(items)),
                "; ".join(items[:3]),
            )
        console.print(table)
        console.print(f"[dim]{elapsed:.2f}s, one snapshot[/]")
    if not result.ok:
        failed = ", ".join(f"{name} ({len(result.violations[name])})" for name in result.failed)
        fail(f"invariants broken in {make_url(url).database}: {failed}", code=1)


@db_app.command("drills")
def drills(
    limit: Annotated[int, typer.Option("--limit", parser=whole_number(1, 1000), metavar="N")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The latest restore drills (maintenance job `restore_drill`) and their results."""
    from worker.adapters.drill_log import latest_drills

    settings = resolved_settings(quiet=as_json)
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        rows = latest_drills(engine, limit)
    except Exception as error:
        fail(f"could not read the drills: {_one_line(error)}", code=1)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    table = Table(title="restore drills (newest first)", title_justify="left")
    for column in ("started", "backup", "status", "rows", "failed invariants / error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        problem: Any = ", ".join(row["failed_invariants"]) or row["error"] or ""
        table.add_row(
            f"{row['started_at']:%Y-%m-%d %H:%M:%S}",
            Path(row["backup_file"]).name,
            "[green]passed[/]" if row["status"] == "passed" else "[red]failed[/]",
            str(sum(row["restored_rows"].values())),
            str(problem),
        )
    if not rows:
        table.add_row("[dim]no drill yet[/]", "", "", "", "")
    console.print(table)
