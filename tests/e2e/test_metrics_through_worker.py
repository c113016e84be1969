"""/metrics from `orderq metrics serve` (a real process) while a real prefork worker with
two pool processes decides a known mix of commands.

The module runs on a database, queues and metrics folder of its own, so every gauge and
counter it reads moves only because of what it published.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from orderq.settings import Settings
from producers.command_log import CommandLog
from producers.commands import Command, PlaceOrder, RestockProduct, UpsertProduct
from producers.database import autocommit, build_engine, normalize_database_url
from producers.publisher import Publisher
from tests.support.database import prepare_database, recreate_empty_database
from tests.support.environment import TEST_BROKER_URL, TEST_DATABASE_URL
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.metrics import MetricsServerProcess, Samples
from tests.support.outcomes import await_outcome
from tests.support.workers import PROJECT_ROOT, WorkerProcess

pytestmark = pytest.mark.e2e

COMMANDS = "orderq_commands_total"
DEPTH = "orderq_queue_depth"
AGE = "orderq_queue_oldest_age_seconds"
HUMAN_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) ")


@dataclass
class Stage:
    settings: Settings
    env: dict[str, str]
    engine: Engine
    publisher: Publisher
    metrics: MetricsServerProcess
    folder: Path
    workers: list[WorkerProcess]

    @property
    def queue(self) -> str:
        return self.settings.command_queue

    def scrape(self) -> Samples:
        """A scrape in which both sources answered (on a busy machine one can miss its
        timeout: its gauges are then absent from that scrape, by design)."""
        return eventually(
            self.metrics.scrape,
            until=lambda s: all(
                s.value("orderq_metrics_source_up", source=source) == 1
                for source in ("database", "broker")
            ),
            what="a scrape with the database and the broker answering",
        )

    def worker(self) -> WorkerProcess:
        worker = WorkerProcess(concurrency=2, env=self.env, name="metrics-worker")
        self.workers.append(worker)
        return worker

    def publish(self, *commands: Command) -> None:
        for command in commands:
            self.publisher.publish(command)

    def deliveries(self, keys: list[str]) -> dict[str, int]:
        with autocommit(self.engine) as connection:
            return CommandLog(connection).delivery_counts(keys)


def drop_database(url: str) -> None:
    target = make_url(normalize_database_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    tag = uuid.uuid4().hex[:8]
    url = make_url(TEST_DATABASE_URL)
    database_url = url.set(database=f"{url.database}_metrics").render_as_string(hide_password=False)
    recreate_empty_database(database_url)
    prepare_database(database_url)
    folder = Path(tempfile.mkdtemp(prefix="orderq-metrics-test-"))
    env = {
        "DATABASE_URL": database_url,
        "ORDERQ_COMMAND_QUEUE": f"metrics-{tag}.commands",
        "ORDERQ_MAINTENANCE_QUEUE": f"metrics-{tag}.maintenance",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        # dead letters: an error the taxonomy does not know, twice; and one slow command
        # that keeps one pool process busy while the other decides the rest
        "ORDERQ_FAILPOINTS": "before_commit=bug@MDEAD-;after_claim=sleep:1@MSLOW-",
        "ORDERQ_MAX_UNKNOWN_ERROR_ATTEMPTS": "2",
        "ORDERQ_LOG_FORMAT": "json",
    }
    settings = Settings(
        database_url=database_url,
        command_queue=env["ORDERQ_COMMAND_QUEUE"],
        maintenance_queue=env["ORDERQ_MAINTENANCE_QUEUE"],
    )
    stage = Stage(
        settings,
        env,
        build_engine(settings),
        Publisher(settings),
        MetricsServerProcess(env),
        folder,
        workers=[],
    )
    try:
        stage.metrics.start()
        yield stage
    finally:
        stage.metrics.stop()
        for worker in stage.workers:
            worker.stop()
            worker.log_path.unlink(missing_ok=True)
        stage.publisher.close()
        stage.engine.dispose()
        drop_database(database_url)
        shutil.rmtree(folder, ignore_errors=True)
        client = redis.Redis.from_url(TEST_BROKER_URL)
        leftovers = list(client.scan_iter(match=f"*metrics-{tag}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()


def product(stock: int = 0) -> tuple[str, list[Command]]:
    sku = unique("MSKU")
    commands: list[Command] = [
        UpsertProduct(key=unique("m-up"), sku=sku, name="Mug", price_cents=900)
    ]
    if stock:
        commands.append(RestockProduct(key=unique("m-rs"), sku=sku, qty=stock))
    return sku, commands


def order(sku: str, prefix: str = "m-order", qty: int = 1, customer: str = "web") -> PlaceOrder:
    return PlaceOrder(key=unique(prefix), customer_ref=customer, lines=[{"sku": sku, "qty": qty}])


def decided(stage: Stage, commands: list[Command]) -> None:
    for command in commands:
        await_outcome(stage.engine, command.key, timeout=60)


def one_by_one(stage: Stage, commands: list[Command]) -> None:
    """Each decided before the next is published (a restock needs its product)."""
    for command in commands:
        stage.publish(command)
        decided(stage, [command])


def test_queue_depth_and_oldest_age_rise_while_the_worker_is_stopped_and_fall_when_it_starts(
    stage,
):
    worker = stage.worker()
    with worker.running():
        _, setup = product()
        one_by_one(stage, setup)
    # the worker is stopped: commands pile up in the broker and in the database
    waiting = [
        UpsertProduct(key=unique("m-wait"), sku=unique("S"), name="x", price_cents=1)
        for _ in range(5)
    ]
    stage.publish(*waiting)

    first = stage.scrape()
    assert first.value(DEPTH, queue=stage.queue, source="broker") == 5
    assert first.value(DEPTH, queue=stage.queue, source="database") == 5
    assert first.value(AGE, queue=stage.queue) > 0
    later = eventually(
        stage.scrape,
        until=lambda s: s.value(AGE, queue=stage.queue) >= first.value(AGE, queue=stage.queue) + 1,
        what="the oldest waiting command getting older",
    )
    assert later.value(DEPTH, queue=stage.queue, source="broker") == 5  # nobody takes them

    with worker.running():
        drained = eventually(
            stage.scrape,
            until=lambda s: (
                s.value(DEPTH, queue=stage.queue, source="broker") == 0
                and s.value(DEPTH, queue=stage.queue, source="database") == 0
            ),
            what="both queue depths back to 0",
            timeout=60,
        )
        assert drained.value(AGE, queue=stage.queue) == 0
        decided(stage, waiting)
        eventually(
            lambda: stage.scrape().total(COMMANDS, type="upsert_product"),
            until=lambda total: total == 6,
            what="the six upserts counted",
        )
    assert drained.value("orderq_metrics_source_up", source="database") == 1
    assert drained.value("orderq_metrics_source_up", source="broker") == 1


def test_each_counter_moves_by_exactly_the_mix_decided_by_two_pool_processes(stage):
    worker = stage.worker()
    with worker.running():
        start = stage.scrape()
        sku, setup = product(stock=100)
        empty, more_setup = product(stock=0)
        setup += more_setup
        one_by_one(stage, setup)
        before = eventually(
            stage.scrape,
            until=lambda s: s.total(COMMANDS) == start.total(COMMANDS) + len(setup),
            what="the setup commands counted",
        )

        slow = order(sku, prefix="MSLOW")  # holds one pool process for a second
        succeeded = [slow] + [order(sku) for _ in range(4)]
        rejected = [order(empty, qty=2) for _ in range(3)]  # insufficient_stock
        dead = [
            UpsertProduct(key=unique("MDEAD"), sku=unique("S"), name="x", price_cents=1)
            for _ in range(2)
        ]
        stage.publish(*succeeded, *rejected, *dead)
        decided(stage, succeeded + rejected + dead)

        replays = [*succeeded[1:3], *rejected[:2]]  # the same command again
        reuses = [  # the same key, another payload
            PlaceOrder(key=original.key, customer_ref="other", lines=[{"sku": sku, "qty": 5}])
            for original in succeeded[3:]
        ]
        stage.publish(*replays, *reuses)
        eventually(
            lambda: stage.deliveries([c.key for c in replays + reuses]),
            until=lambda seen: seen and min(seen.values()) == 2 and len(seen) == 6,
            what="the replays and reuses delivered",
        )
        mix = len(succeeded) + len(rejected) + len(dead) + len(replays) + len(reuses)
        after = eventually(
            stage.scrape,
            until=lambda s: s.total(COMMANDS) >= before.total(COMMANDS) + mix,
            what=f"the {mix} outcomes of the mix counted",
        )
        children = worker.child_pids()

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert after.total(COMMANDS) - before.total(COMMANDS) == mix == 16
    assert moved(COMMANDS, type="place_order", outcome="succeeded") == 5
    assert moved(COMMANDS, type="place_order", outcome="rejected") == 3
    assert moved(COMMANDS, type="place_order", outcome="replayed") == 4
    assert moved(COMMANDS, type="place_order", outcome="reused") == 2
    assert moved(COMMANDS, type="upsert_product", outcome="failed") == 2
    # attempts: one per decided order; two per dead letter (the unknown-error limit)
    assert moved("orderq_command_attempts_total", type="place_order") == 8
    assert moved("orderq_command_attempts_total", type="upsert_product") == 4
    assert moved("orderq_decision_seconds_count", type="place_order") == 8
    assert moved("orderq_decision_seconds_count", type="upsert_product") == 2
    assert moved("orderq_dead_letters") == 2
    # the slow command alone took over a second from accept to decision
    assert moved("orderq_decision_seconds_sum", type="place_order") >= 1.0

    # Both pool processes decided commands, each counted once, in its own file; the
    # scrape adds up every file (earlier workers' included).
    per_process = decisions_per_process(stage.folder)
    assert len(children) == 2
    assert all(per_process[f"counter_{pid}"] > 0 for pid in children), (children, per_process)
    assert sum(per_process.values()) == after.total(COMMANDS)
    # the pool gauges add up the live processes: two children, five connections each
    assert after.value("orderq_db_pool_size", application="orderq") == 10

    # ORDERQ_LOG_FORMAT=json: one JSON line per outcome, and no human-format line.
    lines = worker.log_text().splitlines()
    assert not [line for line in lines if HUMAN_LOG_LINE.match(line)]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    outcomes = {(e["key"], e["outcome"]) for e in events if e.get("logger") == "orderq.decisions"}
    for command in succeeded:
        assert (command.key, "succeeded") in outcomes
    for command in dead:
        assert (command.key, "failed") in outcomes
    for command in reuses:
        assert (command.key, "reused") in outcomes
    line = next(
        e for e in events if e.get("key") == rejected[0].key and e.get("outcome") == "rejected"
    )
    assert (line["type"], line["reason"], line["attempt"]) == (
        "place_order",
        "insufficient_stock",
        1,
    )
    assert line["duration_ms"] > 0 and line["decision_latency_s"] > 0


def decisions_per_process(folder: Path) -> dict[str, float]:
    """`orderq_commands_total` summed per process file (counter_<pid>.db)."""
    counts = {}
    for path in sorted(folder.glob("counter_*.db")):
        families = MultiProcessCollector.merge([str(path)], accumulate=True)
        counts[path.stem] = sum(
            sample.value
            for family in families
            if family.name == "orderq_commands"
            for sample in family.samples
            if sample.name == COMMANDS
        )
    return counts


def test_a_maintenance_run_in_another_process_shows_in_the_scrape(stage):
    before = stage.scrape()
    labels = {"task": "index_health", "result": "succeeded"}

    finished = subprocess.run(
        [sys.executable, "-m", "orderq.cli", "maintenance", "run", "index_health", "--json"],
        cwd=PROJECT_ROOT,
        env={**stage.metrics.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr

    after = stage.scrape()
    assert (
        after.value("orderq_maintenance_runs_total", **labels)
        - before.value("orderq_maintenance_runs_total", **labels)
        == 1
    )
    last = after.value("orderq_maintenance_last_success_timestamp_seconds", task="index_health")
    assert last > before.value(
        "orderq_maintenance_last_success_timestamp_seconds", task="index_health"
    )
    assert after.value("orderq_maintenance_interval_seconds", task="index_health") == 86_400
