"""A private PgBouncer in transaction pooling, in front of a PostgreSQL server.

    with PgBouncer(host="127.0.0.1", port=5432, pool_size=20) as bouncer:
        url = bouncer.url_for("postgresql+psycopg://postgres@127.0.0.1:5432/orderq_test")

Generated configuration in a temporary folder, a free port, stopped and removed on
exit: nothing is left behind. Every database name is passed through to the server
(`* =`), so databases a test creates are reachable through it too.

Also a wrapper that runs a command (the test suite) with the test database behind
PgBouncer and admin work straight to PostgreSQL:

    python -m tests.support.pgbouncer -- pytest tests/e2e tests/faults
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url

from tests.support.cli import free_port

#: PgBouncer will not run as root; as root it is started as this user.
UNPRIVILEGED_USER = "postgres"


def pgbouncer_binary() -> str:
    """The pgbouncer executable (Debian: `apt-get install pgbouncer`)."""
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise RuntimeError("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    return found


def pgbouncer_version() -> str:
    output = subprocess.run(
        [pgbouncer_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return output.splitlines()[0].removeprefix("PgBouncer ").strip()


class PgBouncer:
    """One pgbouncer process with a generated configuration (transaction pooling)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5432,
        *,
        users: tuple[str, ...] = ("postgres",),
        pool_size: int = 20,
        max_client_conn: int = 2000,
        max_db_connections: int = 0,
        listen_port: int | None = None,
    ) -> None:
        self.server_host = host
        self.server_port = port
        self.users = users
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.max_db_connections = max_db_connections
        self.port = listen_port or free_port()
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- configuration ---------------------------------------------------------------------

    def config(self) -> str:
        assert self.folder is not None
        return "\n".join(
            [
                "[databases]",
                # every database name goes to the same name on the server
                f"* = host={self.server_host} port={self.server_port}",
                "",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "pool_mode = transaction",
                # local trust, like the test server; production uses scram-sha-256
                "auth_type = trust",
                f"auth_file = {self.folder / 'userlist.txt'}",
                f"admin_users = {self.users[0]}",
                f"max_client_conn = {self.max_client_conn}",
                f"default_pool_size = {self.pool_size}",
                f"max_db_connections = {self.max_db_connections}",
                # clients wait for a server connection instead of failing at once
                "query_wait_timeout = 120",
                "server_reset_query =",
                "ignore_startup_parameters = extra_float_digits",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> PgBouncer:
        self.folder = Path(tempfile.mkdtemp(prefix="orderq-pgbouncer-"))
        (self.folder / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in self.users))
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(self.config())
        command = [pgbouncer_binary(), str(ini)]
        if os.geteuid() == 0:
            account = pwd.getpwnam(UNPRIVILEGED_USER)
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
            command[1:1] = ["-u", UNPRIVILEGED_USER]
        self._log = (self.folder / "pgbouncer.log").open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start:\n{self.log_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port} in {timeout}s")

    def log_text(self) -> str:
        assert self.folder is not None
        return (self.folder / "pgbouncer.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.folder is not None:
            with contextlib.suppress(Exception):
                self._log.close()
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    def url_for(self, database_url: str) -> str:
        """`database_url` (a URL of the server behind) rewritten to go through PgBouncer."""
        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def admin_dsn(self) -> str:
        """libpq DSN of PgBouncer's admin console (SHOW POOLS, SHOW STATS …)."""
        return f"host=127.0.0.1 port={self.port} dbname=pgbouncer user={self.users[0]}"


def main(argv: list[str]) -> int:
    """Run `argv` with the test database behind a private PgBouncer (transaction mode)."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m tests.support.pgbouncer -- COMMAND ...", file=sys.stderr)
        return 2
    direct = os.environ.get(
        "ORDERQ_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/orderq_test"
    )
    server = make_url(direct)
    pool_size = int(os.environ.get("ORDERQ_TEST_PGBOUNCER_POOL_SIZE", "20"))
    with PgBouncer(server.host or "127.0.0.1", server.port or 5432, pool_size=pool_size) as bouncer:
        env = {
            **os.environ,
            "ORDERQ_TEST_DATABASE_URL": bouncer.url_for(direct),
            "ORDERQ_TEST_ADMIN_DATABASE_URL": direct,
            "ORDERQ_DB_POOLER": "pgbouncer",
        }
        print(
            f"PgBouncer {pgbouncer_version()} (transaction pooling, pool {pool_size}) "
            f"on 127.0.0.1:{bouncer.port} -> {server.host}:{server.port}",
            flush=True,
        )
        return subprocess.call(argv, env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
