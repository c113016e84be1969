"""`orderq db report`, `orderq health` and `orderq maintenance` as a user runs them."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
from alembic import command
from sqlalchemy.engine import make_url

from tests.support.cli import free_port, orderq
from tests.support.database import scratch_database
from tests.support.environment import TEST_DATABASE_URL
from tests.support.names import NAMESPACE
from tests.support.redis_server import PrivateRedis
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.e2e


def test_db_report_prints_every_section(migrated_database):
    result = orderq("db", "report")

    assert result.returncode == 0, result.stderr
    for title in (
        "Connections by state",
        "Slowest statements",
        "Index problems",
        "Largest indexes",
        "Tables",
        "Cache hit ratio",
        "Commands",
    ):
        assert title in result.stdout
    assert "command_ledger" in result.stdout
    assert "pg_stat_statements is not installed in this database" in result.stdout


def test_db_report_json_is_one_parseable_object(migrated_database):
    result = orderq("db", "report", "--json", "--limit", "3")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["database"] == make_url(TEST_DATABASE_URL).database
    assert report["statements"]["available"] is False
    assert {"invalid", "unused", "duplicate", "largest"} <= set(report["indexes"])
    assert len(report["tables"]) <= 3
    assert any(c["application"] == "orderq" for c in report["connections"])


def test_db_report_on_an_unreachable_database_is_one_clear_error():
    port = free_port()
    result = orderq(
        "db", "report", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x"}
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") <= 2
    assert "could not read the database statistics" in result.stderr


def health(env: dict[str, str] | None = None, *arguments: str) -> tuple[int, dict]:
    result = orderq("health", "--json", "--timeout", "2", *arguments, env=env)
    return result.returncode, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def private_queues() -> dict[str, str]:
    """Queue names no other worker of this session consumes."""
    tag = uuid.uuid4().hex[:8]
    return {
        "ORDERQ_COMMAND_QUEUE": f"{NAMESPACE}-health-{tag}.commands",
        "ORDERQ_MAINTENANCE_QUEUE": f"{NAMESPACE}-health-{tag}.maintenance",
    }


def test_health_is_ok_with_a_command_worker_and_the_maintenance_worker(migrated_database):
    queues = private_queues()
    command = WorkerProcess(concurrency=1, env=queues, name="health-commands")
    maintenance = WorkerProcess(
        concurrency=1,
        env=queues,
        queues=queues["ORDERQ_MAINTENANCE_QUEUE"],
        name="health-maintenance",
    )
    with command.running(), maintenance.running():
        code, checks = health(queues)

    assert code == 0, checks
    assert all(check["ok"] for check in checks.values())
    assert queues["ORDERQ_COMMAND_QUEUE"] in checks["command workers"]["detail"]
    assert queues["ORDERQ_MAINTENANCE_QUEUE"] in checks["maintenance worker"]["detail"]


def test_health_fails_with_only_the_maintenance_worker_running(migrated_database):
    """The command worker died; the maintenance worker still answers pings. A container
    healthcheck must see that commands are no longer consumed."""
    queues = private_queues()
    maintenance = WorkerProcess(
        concurrency=1,
        env=queues,
        queues=queues["ORDERQ_MAINTENANCE_QUEUE"],
        name="health-maintenance",
    )
    with maintenance.running():
        code, checks = health(queues)
        commands_code, commands_checks = health(queues, "--queue", "commands")
        maintenance_code, maintenance_checks = health(queues, "--queue", "maintenance")

    assert code == 1
    assert checks["maintenance worker"]["ok"]
    assert not checks["command workers"]["ok"]
    assert (
        f"nothing consumes {queues['ORDERQ_COMMAND_QUEUE']}" in checks["command workers"]["detail"]
    )
    assert "orderq worker" in checks["command workers"]["detail"]
    # what the two containers' healthchecks ask: each about the queue it serves
    assert commands_code == 1
    assert not commands_checks["command workers"]["ok"]
    assert "maintenance worker" not in commands_checks
    assert maintenance_code == 0, maintenance_checks
    assert "command workers" not in maintenance_checks


def test_health_fails_when_the_broker_is_unreachable(migrated_database):
    code, checks = health({"CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})

    assert code == 1
    assert not checks["broker"]["ok"] and "unreachable" in checks["broker"]["detail"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]


def test_health_fails_when_migrations_are_behind(migrated_database):
    from tests.integration.test_concurrent_index_migration import alembic_config

    with scratch_database(TEST_DATABASE_URL, "behind") as behind:
        command.upgrade(alembic_config(behind), "0001")
        code, checks = health({"DATABASE_URL": behind})

    assert code == 1
    assert not checks["migrations"]["ok"]
    assert "database at 0001" in checks["migrations"]["detail"]
    assert "orderq migrate" in checks["migrations"]["detail"]


def test_health_fails_when_the_database_is_unreachable():
    code, checks = health({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"})

    assert code == 1
    assert not checks["database"]["ok"] and not checks["migrations"]["ok"]


def test_health_fails_when_no_worker_answers(migrated_database):
    """A private Redis that no worker listens on: broker fine, nobody answers the ping."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with PrivateRedis(fsync="no") as broker:
        code, checks = health({"CELERY_BROKER_URL": broker.url})

    assert code == 1
    assert checks["broker"]["ok"] and checks["database"]["ok"]
    for name in ("command workers", "maintenance worker"):
        assert not checks[name]["ok"] and "nothing consumes" in checks[name]["detail"]


def test_maintenance_run_executes_a_job_and_refuses_unknown_names(migrated_database):
    ran = orderq("maintenance", "run", "index_health", "--json")
    unknown = orderq("maintenance", "run", "defragment")

    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["task"] == "index_health"
    assert unknown.returncode == 2
    assert "no maintenance job 'defragment'" in unknown.stderr
    assert "purge_ledger" in unknown.stderr
