"""The embedded PostgreSQL: a real server from the `pgserver` wheel, in `<data>/postgres`.

pgserver runs `initdb` on a new folder and `pg_ctl start` when no server is running,
listening only on a Unix socket in the data folder (no TCP port, so it never clashes
with a PostgreSQL on 5432). As root it runs the server as a `pgserver` system user it
creates, and makes the folders above the data folder traversable for that user.

What pgserver does not do, and this module adds:
- a `postmaster.pid` left by a killed server (dead pid, zombie, or a pid the system
  has since given to another program) is removed before starting;
- a folder whose `initdb` was killed half-way (no `postgres.initialized` marker next
  to it) is wiped and initialised again — it never held data;
- "running" means accepting connections, checked with a real connection;
- the server is never stopped implicitly (`cleanup_mode=None`): it keeps running
  between commands until `orderq down`.

PostgreSQL itself refuses a second server on the same folder (postmaster.pid).
The build ships no contrib extensions (no pg_trgm, no pg_stat_statements).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
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


def import_pgserver() -> ModuleType:
    # pgserver logs every failed pg_ctl run, with the whole server log, to stderr;
    # our own errors quote the end of that log instead.
    quiet = logging.getLogger("pgserver")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    try:
        with warnings.catch_warnings():
            # At import pgserver asks platformdirs for a runtime folder (for its lock
            # file); without XDG_RUNTIME_DIR that warns and falls back to a temp
            # folder, which is fine here.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import pgserver
    except ImportError as error:
        raise missing_extra("pgserver") from error
    return pgserver


def binaries_dir() -> Path | None:
    """The embedded server's own programs (pg_dump, pg_restore of its version), or None
    when the `embedded` extra is not installed."""
    try:
        import_pgserver()
    except EmbeddedServerError:
        return None
    from pgserver import _commands

    return Path(_commands.POSTGRES_BIN_PATH)


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
    # yet reaped), and pgserver cannot read a postmaster.pid cut short by a kill
    # during start-up: remove them either way. The socket lock files live in the
    # socket directory, which is PGDATA unless pgserver had to pick a shorter one.
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


def _handle(pgserver: ModuleType, pgdata: Path):
    # pgserver caches one handle per folder per process; after a server died a cached
    # handle would still claim it runs, so always ask afresh.
    pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
    return pgserver.get_server(pgdata, cleanup_mode=None)


def ensure_postgres(data_dir: Path) -> PostgresInstance:
    """Start the embedded PostgreSQL under `data_dir` unless it runs; create the
    `orderq` database. Call with the data folder's lock held."""
    pgserver = import_pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata_of(data_dir)
    _clear_stale_pidfile(data_dir)
    _clear_unfinished_init(data_dir)
    try:
        info = _handle(pgserver, pgdata).get_postmaster_info()
    except Exception as error:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL did not start ({error.__class__.__name__}: {error}); "
            f"its log ({pgdata / 'log'}) ends with:\n{tail(pgdata / 'log')}"
        ) from error
    instance = PostgresInstance(pid=info.pid, socket_dir=Path(info.socket_dir))
    _wait_until_accepting(instance, pgdata)
    postgres_marker_of(data_dir).touch()
    _ensure_database(instance)
    return instance


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
