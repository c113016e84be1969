"""The embedded PostgreSQL and Redis: started once per data folder, reused, recovered
after a kill, stopped by `stop` with their data kept. Each test uses its own
temporary data folder (never the user's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection
from sqlalchemy import create_engine, pool, text

from orderq.embedded import (
    EmbeddedServerError,
    ensure_postgres,
    ensure_running,
    is_embedded,
    stop,
)
from orderq.embedded.capabilities import (
    ExtensionUnavailable,
    extension_status,
    require_extension,
)
from orderq.embedded.layout import (
    pgdata_of,
    postgres_marker_of,
    redis_dir_of,
    redis_socket_of,
)
from tests.support.embedded import kill_hard, postmasters, redis_servers
from tests.support.eventually import eventually
from tests.support.scratch import scratch_dir
from tests.support.workers import PROJECT_ROOT

START_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from orderq.embedded import ensure_running
servers = ensure_running(Path(sys.argv[1]))
print(json.dumps({"postgres": servers.postgres_pid, "redis": servers.redis_pid,
                  "database_url": servers.database_url, "broker_url": servers.broker_url}))
"""


def start_elsewhere(data_dir: Path) -> subprocess.Popen[str]:
    """`ensure_running` in a fresh process (this one caches what it started)."""
    return subprocess.Popen(
        [sys.executable, "-c", START_IN_ANOTHER_PROCESS, str(data_dir)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def started_elsewhere(data_dir: Path) -> dict:
    process = start_elsewhere(data_dir)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = scratch_dir("embedded-")
    yield folder
    stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


def query(database_url: str, sql: str):
    """Run `sql` (statements separated by `;`); the first column of the last row."""
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            results = [connection.execute(text(part)) for part in sql.split(";")]
            return results[-1].scalar() if results[-1].returns_rows else None
    finally:
        engine.dispose()


def test_both_servers_start_answer_and_are_reused_by_the_next_process(data_dir):
    first = started_elsewhere(data_dir)

    assert query(first["database_url"], "SELECT current_database()") == "orderq"
    with Connection(first["broker_url"]) as connection:
        queue = connection.SimpleQueue("probe")
        queue.put({"hello": "embedded"})
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.payload == {"hello": "embedded"}

    second = started_elsewhere(data_dir)
    assert (second["postgres"], second["redis"]) == (first["postgres"], first["redis"])
    assert len(postmasters(data_dir)) == 1
    assert len(redis_servers(data_dir)) == 1


def test_no_tcp_port_is_opened(data_dir):
    servers = ensure_running(data_dir)
    import psutil

    for pid in (servers.postgres_pid, servers.redis_pid):
        listening = [c for c in psutil.Process(pid).net_connections("inet") if c.status == "LISTEN"]
        assert listening == []


def test_killed_servers_come_back_with_their_data_and_only_once(data_dir):
    before = started_elsewhere(data_dir)
    query(before["database_url"], "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
    client = redis.Redis(unix_socket_path=str(redis_socket_of(data_dir)))
    client.set("kept", "yes")
    client.close()

    kill_hard(before["postgres"])
    kill_hard(before["redis"])
    after = started_elsewhere(data_dir)

    assert after["postgres"] != before["postgres"]
    assert after["redis"] != before["redis"]
    assert query(after["database_url"], "SELECT n FROM kept") == 42
    client = redis.Redis(unix_socket_path=str(redis_socket_of(data_dir)))
    assert client.get("kept") == b"yes"
    client.close()
    assert [p.pid for p in postmasters(data_dir)] == [after["postgres"]]
    assert [p.pid for p in redis_servers(data_dir)] == [after["redis"]]


def test_pid_files_naming_another_live_process_are_treated_as_stale(data_dir):
    ensure_running(data_dir)
    stop(data_dir)
    # A killed server's pid can be reused by any program: here, this test process.
    (pgdata_of(data_dir) / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata_of(data_dir)}\n")
    (redis_dir_of(data_dir) / "redis.pid").write_text(str(os.getpid()))
    redis_socket_of(data_dir).touch()

    servers = started_elsewhere(data_dir)

    assert query(servers["database_url"], "SELECT 1") == 1
    assert len(postmasters(data_dir)) == 1
    assert len(redis_servers(data_dir)) == 1


def test_a_folder_left_by_a_killed_initdb_is_initialised_again(data_dir):
    pgdata = pgdata_of(data_dir)
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "base").mkdir()  # initdb was killed here: no catalog, no config

    instance = ensure_postgres(data_dir)

    assert query(instance.url(), "SELECT current_database()") == "orderq"


def test_processes_starting_at_once_share_one_server_of_each_kind(data_dir):
    racers = [start_elsewhere(data_dir) for _ in range(3)]
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        results.append(json.loads(out))

    assert len({(r["postgres"], r["redis"]) for r in results}) == 1
    assert len(postmasters(data_dir)) == 1
    assert len(redis_servers(data_dir)) == 1


def test_stop_ends_both_servers_and_keeps_the_data(data_dir):
    servers = started_elsewhere(data_dir)
    query(servers["database_url"], "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")

    stopped = stop(data_dir)

    assert stopped == {"postgres": servers["postgres"], "redis": servers["redis"]}
    eventually(
        lambda: not postmasters(data_dir) and not redis_servers(data_dir),
        what=f"no server left on {data_dir}",
        timeout=20,
        interval=0.1,
    )
    assert stop(data_dir) == {}
    again = started_elsewhere(data_dir)
    assert query(again["database_url"], "SELECT n FROM kept") == 7


def test_embedded_urls_are_recognised_and_tcp_urls_are_not(data_dir):
    servers = ensure_running(data_dir)

    assert is_embedded(servers.database_url)
    assert is_embedded(servers.broker_url)
    assert not is_embedded("postgresql+psycopg://postgres@127.0.0.1:5432/orderq")
    assert not is_embedded("redis://127.0.0.1:6379/0")
    assert not is_embedded("postgresql+psycopg://postgres@/orderq?host=/var/run/postgresql")


def test_the_embedded_server_ships_contrib_and_preloads_statement_statistics(data_dir):
    servers = ensure_running(data_dir)
    engine = create_engine(servers.database_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            for name in ("pg_trgm", "unaccent", "pg_stat_statements", "pgstattuple"):
                assert extension_status(connection, name) in ("available", "installed"), name
            assert require_extension(connection, "pg_trgm", "fuzzy search") in (
                "available",
                "installed",
            )
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            calls = connection.execute(text("SELECT count(*) FROM pg_stat_statements")).scalar()
            with pytest.raises(ExtensionUnavailable) as refused:
                require_extension(connection, "no_such_extension", "time travel")
    finally:
        engine.dispose()

    assert calls >= 0  # readable: the library is loaded at server start
    assert "time travel needs the PostgreSQL extension no_such_extension" in str(refused.value)


def test_a_folder_of_another_major_version_is_refused_with_what_to_do(data_dir):
    pgdata = pgdata_of(data_dir)
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("16\n")
    postgres_marker_of(data_dir).touch()  # a finished folder of the old pgserver build

    with pytest.raises(EmbeddedServerError) as refused:
        ensure_postgres(data_dir)

    message = str(refused.value)
    assert "was created by PostgreSQL 16, but orderq now embeds PostgreSQL" in message
    assert "orderq down" in message and "docs/embedded.md" in message
    assert (pgdata / "PG_VERSION").read_text() == "16\n"  # nothing was touched
    assert postmasters(data_dir) == []
