"""A backup taken while a worker runs commands, restored into a new database: every
invariant holds there, and its rows are exactly what the ledger had decided at the
backup's snapshot."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid

import pytest
import redis
from sqlalchemy import create_engine, pool, text

from orderq.settings import Settings
from producers.publisher import Publisher
from tests.support.cli import ORDERQ, PROJECT_ROOT, orderq
from tests.support.commands import new_product, order_for
from tests.support.environment import TEST_BROKER_URL
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.outcomes import await_outcomes, scalar
from tests.support.private_database import private_database
from tests.support.scratch import scratch_dir
from tests.support.workers import WorkerProcess
from worker.service.bootstrap import bootstrap

pytestmark = pytest.mark.e2e

COMMANDS = 150
SNAPSHOT_TAKEN = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = :name "
    "AND application_name = 'pg_dump' AND backend_xmin IS NOT NULL"
)


def decided(engine, keys: list[str]) -> dict[str, tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT idempotency_key, status, result::text FROM command_ledger "
                "WHERE idempotency_key = ANY(:keys)"
            ),
            {"keys": keys},
        ).all()
    return {key: (status, result) for key, status, result in rows}


def orders_of(engine, keys: list[str]) -> set[tuple[str, str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT idempotency_key, order_number, total_cents FROM orders "
                "WHERE idempotency_key = ANY(:keys)"
            ),
            {"keys": keys},
        ).all()
    return {tuple(row) for row in rows}  # type: ignore[misc]


def movements_of(engine, keys: list[str]) -> set[tuple[str, int, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT command_key, on_hand_delta, reserved_delta FROM stock_movements "
                "WHERE command_key = ANY(:keys)"
            ),
            {"keys": keys},
        ).all()
    return {tuple(row) for row in rows}  # type: ignore[misc]


def test_backup_under_load_restores_to_exactly_what_was_decided_at_its_snapshot():
    queue = f"backup-{uuid.uuid4().hex[:8]}.commands"
    folder = scratch_dir("backup-test-")
    backup = folder / "orderq.dump"
    with private_database("backup") as source:
        restored = source.sibling("restored")
        env = {
            "DATABASE_URL": source.url,
            "ORDERQ_ADMIN_DATABASE_URL": source.direct,
            "ORDERQ_COMMAND_QUEUE": queue,
        }
        settings = Settings(database_url=source.url, command_queue=queue)
        services = bootstrap(settings, lambda *_: None)
        engine = services.engine
        worker = WorkerProcess(
            concurrency=2,
            env={**env, "ORDERQ_FAILPOINTS": "after_lock=sleep:0.05@BK-"},
            name="backup",
        )
        try:
            skus = [new_product(services.runner, stock=400) for _ in range(3)]
            commands = [order_for(skus[i % 3], key=unique("BK")) for i in range(COMMANDS)]
            keys = [command.key for command in commands]
            before, after = commands[: COMMANDS // 2], commands[COMMANDS // 2 :]
            with worker.running(), Publisher(settings) as publisher:
                for command in before:
                    publisher.publish(command)
                eventually(
                    lambda: len(decided(engine, keys)),
                    until=lambda n: n >= 20,
                    what="the load under way",
                )
                backing_up = subprocess.Popen(
                    [ORDERQ, "db", "backup", str(backup)],
                    cwd=PROJECT_ROOT,
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                # pg_dump holds its snapshot (backend_xmin) from its first query on: the
                # second half is published after it, so it cannot all be in the backup.
                eventually(
                    lambda: scalar(engine, SNAPSHOT_TAKEN, name=source.name),
                    what="pg_dump's snapshot",
                    timeout=60,
                )
                for command in after:
                    publisher.publish(command)
                _, errors = backing_up.communicate(timeout=120)
                statuses = await_outcomes(engine, keys, timeout=120)
            assert backing_up.returncode == 0, errors
            assert set(statuses.values()) == {"succeeded"}

            put_back = orderq(
                "db", "restore", str(backup), "--into", restored.name, env=env, timeout=120
            )
            assert put_back.returncode == 0, put_back.stderr
            checked = orderq("db", "verify", restored.name, "--json", env=env)
            assert checked.returncode == 0, checked.stdout + checked.stderr

            copy = create_engine(restored.direct, poolclass=pool.NullPool)
            try:
                at_snapshot = decided(copy, keys)
                assert 0 < len(at_snapshot) < COMMANDS  # taken mid-load
                now = decided(engine, keys)
                assert at_snapshot == {key: now[key] for key in at_snapshot}
                taken = list(at_snapshot)
                assert orders_of(copy, keys) == orders_of(engine, taken)
                assert movements_of(copy, keys) == movements_of(engine, taken)
                sold = "SELECT sum(reserved) FROM stock_levels"
                assert scalar(copy, sold) == len(at_snapshot)  # one unit per order
            finally:
                copy.dispose()
        finally:
            services.close()
            with contextlib.suppress(Exception):
                from worker.adapters.backups import drop_database

                drop_database(restored.direct)
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis.from_url(TEST_BROKER_URL)
                for key in client.scan_iter(match=f"{queue}*"):
                    client.delete(key)
                client.close()
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
