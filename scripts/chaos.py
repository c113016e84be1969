"""Chaos run: thousands of mixed order and loan commands, duplicate publishes, workers
killed at random, the broker restarted once — then a table of what the database says
happened.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/orderq_dev \\
        .venv/bin/python scripts/chaos.py --commands 2000
    .venv/bin/python scripts/chaos.py --celery-defaults   # same scenario, Celery's ack defaults
    .venv/bin/python scripts/chaos.py --both              # both, side by side
    .venv/bin/python scripts/chaos.py --workload loans    # only the library

Not a test: it runs for a minute or two and prints figures. It starts its own private
redis-server (never the shared one) and its own worker processes; the database is the
one `DATABASE_URL` names (migrated on start; every SKU and key it creates is unique, so
a shared development database is fine). Exits 1 if any invariant is broken: a key
without a terminal outcome (lost), a command applied twice, an effect without a
success, stock oversold or out of step with its movements, two active loans of a copy,
loans out of step with the ledger, a copy whose status disagrees with its loan or hold,
a member over the loan limit (tests/support/invariants.py).

`--celery-defaults` runs the workers with Celery's default acknowledgement settings
(ack on receipt, no reject on worker lost, prefetch 4): a pool process killed in the
middle of a command then loses it — the table shows how many.

Workloads plug in (`WORKLOADS`): a workload creates its fixtures in-process, yields
the first wave of commands and, as outcomes arrive, follow-up commands (pay or cancel
an order that was placed, return a loan, collect a hold that became ready...), and
names what the invariants should look at. `orders` and `loans` run by default; the
first wave is split evenly between the workloads chosen.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from orderq.schema import ensure_database_exists, upgrade_to_head  # noqa: E402
from producers.commands import (  # noqa: E402
    AddCopy,
    AddWork,
    CancelOrder,
    CancelReservation,
    CheckoutCopy,
    Command,
    ConfirmPayment,
    PlaceOrder,
    PlaceReservation,
    RegisterMember,
    RenewLoan,
    RestockProduct,
    ReturnCopy,
    ShipOrder,
    UpsertProduct,
)
from producers.database import build_engine, describe_url  # noqa: E402
from producers.publisher import Publisher, PublishError  # noqa: E402
from tests.support.invariants import (  # noqa: E402
    TERMINAL,
    Report,
    Scope,
    check_invariants,
    outcome_of_keys,
)
from tests.support.redis_server import PrivateRedis  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402
from worker.service.maintenance.republish import republish_stuck  # noqa: E402
from worker.settings import WorkerSettings as Settings  # noqa: E402

console = Console()

#: Worker settings for the run: abandoned messages come back after 10 s.
WORKER_ENV = {
    "ORDERQ_REDIS_VISIBILITY_TIMEOUT_SECONDS": "10",
    "ORDERQ_REDIS_UNACKED_RESTORE_INTERVAL_SECONDS": "1",
    "ORDERQ_TASK_TIME_LIMIT_SECONDS": "6",
    "ORDERQ_TASK_SOFT_TIME_LIMIT_SECONDS": "5",
    "ORDERQ_RETRY_BACKOFF_SECONDS": "0.2",
    "ORDERQ_RETRY_BACKOFF_MAX_SECONDS": "2",
}
#: No outcome for this long while messages should be flowing: what is left is lost
#: (longer than the visibility timeout plus the restore sweep and a retry countdown).
STALL_SECONDS = 18.0
#: With --sweep: a key without news for this long is re-published (the workers'
#: visibility timeout + time limit + longest backoff, as `default_age` computes it).
SWEEP_AGE = 18.0
DEFAULTS_APP = "scripts.celery_defaults_app"
ORDERQ_APP = "worker.entrypoints.celery_app"


# -- workloads ------------------------------------------------------------------------------


class Workload(Protocol):
    """A family of commands the chaos run mixes in."""

    name: str

    def setup(self, runner: Any) -> None:
        """Create fixtures (products, members, copies...) in-process, before the run."""

    def first_wave(self, count: int, rng: random.Random) -> list[Command]:
        """Commands that need nothing but the fixtures."""

    def follow_ups(
        self, decided: dict[str, tuple[str, dict[str, Any] | None]], rng: random.Random
    ) -> list[Command]:
        """New commands for keys that just got an outcome (key -> (status, result))."""

    def scope(self) -> dict[str, Any]:
        """What the invariants should look at (e.g. `skus`)."""


@dataclass
class OrderWorkload:
    """Place orders against scarce stock, restock now and then; pay, ship or cancel
    the orders that were placed."""

    products: int = 12
    initial_stock: int = 40
    name: str = "orders"
    skus: list[str] = field(default_factory=list)
    _next_step: dict[str, str] = field(default_factory=dict)

    def setup(self, runner: Any) -> None:
        tag = uuid.uuid4().hex[:6].upper()
        for index in range(self.products):
            sku = f"CHAOS-{tag}-{index}"
            for command in (
                UpsertProduct(
                    key=f"chaos-up-{sku}", sku=sku, name=f"Chaos {index}", price_cents=100 + index
                ),
                RestockProduct(key=f"chaos-rs-{sku}", sku=sku, qty=self.initial_stock),
            ):
                outcome = runner.run(command.message(), command.type)
                assert outcome.status == "succeeded", outcome
            self.skus.append(sku)

    def first_wave(self, count: int, rng: random.Random) -> list[Command]:
        commands: list[Command] = []
        for index in range(count):
            key = f"chaos-{uuid.uuid4().hex[:12]}"
            if index % 15 == 14:
                commands.append(
                    RestockProduct(key=key, sku=rng.choice(self.skus), qty=rng.randint(5, 20))
                )
                continue
            lines = [
                {"sku": sku, "qty": rng.randint(1, 3)}
                for sku in rng.sample(self.skus, rng.randint(1, 3))
            ]
            commands.append(PlaceOrder(key=key, customer_ref=f"c-{index % 97}", lines=lines))
            self._next_step[key] = "placed"
        return commands

    def follow_ups(
        self, decided: dict[str, tuple[str, dict[str, Any] | None]], rng: random.Random
    ) -> list[Command]:
        commands: list[Command] = []
        for key, (status, result) in decided.items():
            step = self._next_step.pop(key, None)
            if step is None or status != "succeeded" or not result:
                continue
            number, follow = result["order_number"], f"{key}-{{}}"
            if step == "placed":  # pay it, cancel it, or leave it
                roll = rng.random()
                if roll < 0.45:
                    command = ConfirmPayment(key=follow.format("pay"), order_number=number)
                    self._next_step[command.key] = "paid"
                    commands.append(command)
                elif roll < 0.65:
                    commands.append(CancelOrder(key=follow.format("cancel"), order_number=number))
            elif step == "paid":
                if rng.random() < 0.6:
                    commands.append(ShipOrder(key=follow.format("ship"), order_number=number))
                else:
                    commands.append(CancelOrder(key=follow.format("cancel"), order_number=number))
        return commands

    def scope(self) -> dict[str, Any]:
        return {"skus": list(self.skus)}


def _key() -> str:
    return f"chaos-{uuid.uuid4().hex[:12]}"


@dataclass
class LoanWorkload:
    """A small library under contention: many members with low loan limits race for
    the few copies of a few works — checkouts, returns at the front desk, renewals,
    reservations and cancellations (of every work but the last, whose loans can be
    renewed). Follow-ups act like the people involved: a
    borrower returns (or renews, then returns) or keeps the book; a member whose hold
    is ready collects it (or cancels); a collection that is refused cancels the hold
    so the copy moves on."""

    members: int = 16
    works: int = 4
    copies_per_work: int = 2
    name: str = "loans"
    barcodes: list[str] = field(default_factory=list)
    member_numbers: list[str] = field(default_factory=list)
    copies_of: dict[str, list[str]] = field(default_factory=dict)
    work_of: dict[str, str] = field(default_factory=dict)
    #: key -> what its outcome leads to ("borrow", "renew", "free", "reserve", "collect")
    _next_step: dict[str, tuple[str, Command]] = field(default_factory=dict)

    def setup(self, runner: Any) -> None:
        tag = uuid.uuid4().hex[:6].upper()
        fixtures: list[Command] = []
        for index in range(self.members):
            number = f"CHAOS-M-{tag}-{index}"
            self.member_numbers.append(number)
            fixtures.append(
                RegisterMember(
                    key=f"chaos-reg-{number}", member=number, name="Chaos", loan_limit=1 + index % 2
                )
            )
        for index in range(self.works):
            work = f"CHAOS-W-{tag}-{index}"
            fixtures.append(AddWork(key=f"chaos-work-{work}", work=work, title=f"Chaos {index}"))
            for copy in range(self.copies_per_work):
                barcode = f"{work}-C{copy}"
                fixtures.append(AddCopy(key=f"chaos-copy-{barcode}", work=work, barcode=barcode))
                self.copies_of.setdefault(work, []).append(barcode)
                self.work_of[barcode] = work
                self.barcodes.append(barcode)
        for command in fixtures:
            outcome = runner.run(command.message(), command.type)
            assert outcome.status == "succeeded", outcome

    def _then(self, step: str, command: Command) -> Command:
        self._next_step[command.key] = (step, command)
        return command

    def first_wave(self, count: int, rng: random.Random) -> list[Command]:
        commands: list[Command] = []
        for _ in range(count):
            member, barcode = rng.choice(self.member_numbers), rng.choice(self.barcodes)
            # nobody reserves the last work: its loans can be renewed (a queue refuses it)
            work, roll = rng.choice(list(self.copies_of)[:-1]), rng.random()
            if roll < 0.68:
                commands.append(
                    self._then("borrow", CheckoutCopy(key=_key(), member=member, barcode=barcode))
                )
            elif roll < 0.82:
                commands.append(
                    self._then("reserve", PlaceReservation(key=_key(), member=member, work=work))
                )
            elif roll < 0.9:  # a copy handed in at the desk, whoever had it
                commands.append(self._then("free", ReturnCopy(key=_key(), barcode=barcode)))
            elif roll < 0.93:
                commands.append(RenewLoan(key=_key(), member=member, barcode=barcode))
            else:
                commands.append(
                    self._then("free", CancelReservation(key=_key(), member=member, work=work))
                )
        return commands

    def _borrowed(self, member: str, barcode: str, rng: random.Random) -> list[Command]:
        roll = rng.random()
        if roll < 0.55:
            return [self._then("free", ReturnCopy(key=_key(), barcode=barcode))]
        if roll < 0.9:
            return [self._then("renew", RenewLoan(key=_key(), member=member, barcode=barcode))]
        return []  # keeps it

    def _ready(self, member: str, barcode: str, rng: random.Random) -> list[Command]:
        """`member`'s hold on `barcode` is ready: collect it, cancel, or let it sit."""
        roll = rng.random()
        if roll < 0.8:
            return [self._then("collect", CheckoutCopy(key=_key(), member=member, barcode=barcode))]
        if roll < 0.95:
            work = self.work_of[barcode]
            return [self._then("free", CancelReservation(key=_key(), member=member, work=work))]
        return []

    def follow_ups(
        self, decided: dict[str, tuple[str, dict[str, Any] | None]], rng: random.Random
    ) -> list[Command]:
        commands: list[Command] = []
        for key, (status, result) in decided.items():
            step, command = self._next_step.pop(key, (None, None))
            if step is None or command is None:
                continue
            ok, result = status == "succeeded", result or {}
            if step in ("borrow", "collect") and ok:
                commands += self._borrowed(result["member"], result["barcode"], rng)
            elif step == "collect" and status == "rejected":  # let the copy move on
                assert isinstance(command, CheckoutCopy)
                cancel = CancelReservation(
                    key=_key(), member=command.member, work=self.work_of[command.barcode]
                )
                commands.append(self._then("free", cancel))
            elif step == "renew":  # renewed: maybe once more; in the end it comes back
                assert isinstance(command, RenewLoan)
                if ok and rng.random() < 0.5:
                    again = RenewLoan(key=_key(), member=command.member, barcode=command.barcode)
                    commands.append(self._then("renew", again))
                else:
                    back = ReturnCopy(key=_key(), barcode=command.barcode)
                    commands.append(self._then("free", back))
            elif step == "free" and ok and result.get("held_for"):  # handed to the queue
                barcode = result.get("barcode") or result["released_barcode"]
                commands += self._ready(result["held_for"], barcode, rng)
            elif step == "reserve" and ok and result.get("status") == "ready":
                commands += self._ready(result["member"], result["barcode"], rng)
        return commands

    def scope(self) -> dict[str, Any]:
        return {"barcodes": list(self.barcodes)}


WORKLOADS: dict[str, Callable[[], Workload]] = {"orders": OrderWorkload, "loans": LoanWorkload}


# -- the run --------------------------------------------------------------------------------


@dataclass
class Tally:
    publishes: int = 0
    duplicate_publishes: int = 0
    publish_retries: int = 0
    child_kills: int = 0
    worker_kills: int = 0
    broker_restarts: int = 0
    swept: int = 0
    keys: list[str] = field(default_factory=list)
    keys_by_workload: Counter[str] = field(default_factory=Counter)


@dataclass
class RunResult:
    mode: str
    seconds: float
    tally: Tally
    report: Report
    logs: list[str]
    swept_enabled: bool = False


class ChaosRun:
    """One scenario under one set of acknowledgement settings."""

    def __init__(self, args: argparse.Namespace, celery_defaults: bool) -> None:
        self.args = args
        self.celery_defaults = celery_defaults
        self.rng = random.Random(args.seed)
        self.tally = Tally()
        self.stop_chaos = threading.Event()
        self.tag = uuid.uuid4().hex[:8]
        self.broker = PrivateRedis(fsync="everysec")
        self.workers: list[WorkerProcess] = []
        self.halfway = threading.Event()  # half the first wave is out: restart the broker
        # the maintenance job's own settings, with the chaos run's short staleness age
        self.sweep_settings = Settings(
            stuck_command_after_seconds=int(SWEEP_AGE), republish_max_times=10
        )

    # infrastructure

    def worker_env(self) -> dict[str, str]:
        return {
            **WORKER_ENV,
            "CELERY_BROKER_URL": self.broker.url,
            "ORDERQ_COMMAND_QUEUE": f"chaos-{self.tag}.commands",
            "ORDERQ_APPLICATION_NAME": f"orderq-chaos-{self.tag}",
        }

    def start_worker(self, index: int) -> WorkerProcess:
        process = WorkerProcess(
            concurrency=self.args.concurrency,
            env=self.worker_env(),
            name=f"chaos-{index}",
            app=DEFAULTS_APP if self.celery_defaults else ORDERQ_APP,
        )
        process.start()
        return process

    def run(self, settings: Settings, engine: Engine, runner: Any) -> RunResult:
        workloads = [WORKLOADS[name]() for name in self.args.workload]
        for workload in workloads:
            workload.setup(runner)
        self.broker.start()
        publisher = Publisher(
            settings.model_copy(
                update={
                    "broker_url": self.broker.url,
                    "command_queue": f"chaos-{self.tag}.commands",
                }
            )
        )
        started = time.monotonic()
        try:
            self.workers = [self.start_worker(i) for i in range(self.args.workers)]
            chaos = threading.Thread(target=self.chaos_loop, daemon=True)
            chaos.start()
            self.publish_and_follow(publisher, engine, workloads, started)
            self.stop_chaos.set()
            chaos.join()
            for index, process in enumerate(self.workers):  # whatever died, bring it back
                if not process.is_running():
                    self.workers[index] = self.start_worker(index + 100)
            self.drain(engine, publisher)
            seconds = time.monotonic() - started
        finally:
            self.stop_chaos.set()
            for process in self.workers:
                process.stop(timeout=10)
            publisher.close()
            self.broker.close()
        scope: dict[str, list[str]] = {}
        for workload in workloads:
            for name, values in workload.scope().items():
                scope.setdefault(name, []).extend(values)
        report = check_invariants(engine, Scope(keys=self.tally.keys, **scope))
        mode = "Celery defaults" if self.celery_defaults else "orderq settings"
        if self.args.sweep:
            mode += " + stuck sweep"
        logs = [str(p.log_path) for p in self.workers]
        return RunResult(mode, seconds, self.tally, report, logs, bool(self.args.sweep))

    # publishing, with duplicates and follow-ups

    def publish(self, publisher: Publisher, command: Command) -> None:
        for _ in range(10):
            try:
                publisher.publish(command)
                self.tally.publishes += 1
                return
            except PublishError:  # the broker is restarting: an upstream system retries
                self.tally.publish_retries += 1
                time.sleep(0.5)
        raise RuntimeError(f"could not publish {command.key} for 10 tries")

    def publish_and_follow(
        self, publisher: Publisher, engine: Engine, workloads: list[Workload], started: float
    ) -> None:
        pending: list[tuple[str, Command]] = []
        for workload in workloads:
            wave = workload.first_wave(self.args.commands // len(workloads), self.rng)
            pending += [(workload.name, command) for command in wave]
        self.rng.shuffle(pending)
        first_wave = len(pending)
        duplicates: list[tuple[float, Command]] = []
        open_keys: set[str] = set()
        deadline = started + self.args.duration
        batch = max(1, self.args.rate // 10)
        last_progress = time.monotonic()
        while time.monotonic() < deadline:
            now = time.monotonic()
            for workload_name, command in pending[:batch]:
                self.publish(publisher, command)
                self.tally.keys.append(command.key)
                self.tally.keys_by_workload[workload_name] += 1
                open_keys.add(command.key)
                if self.rng.random() < self.args.duplicates:
                    duplicates.append((now + self.rng.uniform(0, 3), command))
            del pending[:batch]
            if len(self.tally.keys) >= first_wave // 2:
                self.halfway.set()
            due = [c for when, c in duplicates if when <= now]
            duplicates = [(when, c) for when, c in duplicates if when > now]
            for command in due:
                self.publish(publisher, command)
                self.tally.duplicate_publishes += 1
            decided = self.newly_decided(engine, open_keys)
            open_keys -= decided.keys()
            if decided:
                last_progress = now
            for workload in workloads:
                follow_ups = workload.follow_ups(decided, self.rng)
                pending += [(workload.name, command) for command in follow_ups]
            stalled = not open_keys or now - last_progress > STALL_SECONDS
            if not pending and not duplicates and stalled:
                break  # all decided, or what is left never moves (lost)
            time.sleep(0.1)
        for _, command in duplicates:  # publish what is left; nothing is skipped
            self.publish(publisher, command)
            self.tally.duplicate_publishes += 1

    def newly_decided(self, engine: Engine, keys: Iterable[str]) -> dict[str, tuple[str, Any]]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT idempotency_key, status, result FROM command_ledger "
                    "WHERE idempotency_key = ANY(:keys) AND status <> 'processing' "
                    "UNION ALL SELECT idempotency_key, 'failed', NULL FROM command_deliveries "
                    "WHERE idempotency_key = ANY(:keys) AND state IN ('failed', 'discarded')"
                ),
                {"keys": list(keys)},
            ).all()
        return {key: (status, result) for key, status, result in rows}

    # the chaos

    def chaos_loop(self) -> None:
        low, high = self.args.kill_interval
        while not self.stop_chaos.wait(self.rng.uniform(low, high)):
            if self.tally.broker_restarts == 0 and self.halfway.is_set():
                self.broker.restart(down_for=1.0)
                self.tally.broker_restarts += 1
                continue
            index = self.rng.randrange(len(self.workers))
            process = self.workers[index]
            if self.rng.random() < self.args.whole_worker_share:
                process.kill()
                self.tally.worker_kills += 1
                self.workers[index] = self.start_worker(index + 10 * (self.tally.worker_kills + 1))
                continue
            children = process.child_pids()
            if children:
                try:
                    os.kill(self.rng.choice(children), 9)
                    self.tally.child_kills += 1
                except ProcessLookupError:
                    pass

    def drain(self, engine: Engine, publisher: Publisher) -> None:
        """Wait until every key is decided, or nothing has moved for a while (a lost
        message never comes back — unless --sweep re-publishes it)."""
        sweep = self.args.sweep
        stall_limit = STALL_SECONDS + (SWEEP_AGE + sweep if sweep else 0)
        deadline = time.monotonic() + self.args.drain + (SWEEP_AGE if sweep else 0)
        last_count, last_change, last_sweep = -1, time.monotonic(), time.monotonic()
        while time.monotonic() < deadline:
            if sweep and time.monotonic() - last_sweep >= sweep:
                last_sweep = time.monotonic()
                swept = republish_stuck(self.sweep_settings, engine, publisher.send)
                self.tally.swept += int(swept.figures.get("republished", 0))
            with engine.connect() as connection:
                statuses = outcome_of_keys(connection, self.tally.keys)
            done = sum(status in TERMINAL for status in statuses.values())
            if done == len(statuses):
                return
            if done != last_count:
                last_count, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > stall_limit:
                return
            time.sleep(0.5)


# -- output ---------------------------------------------------------------------------------


def render(results: list[RunResult]) -> Table:
    table = Table(title="orderq chaos run", show_lines=False)
    table.add_column("measure")
    for result in results:
        table.add_column(result.mode, justify="right")

    def row(label: str, values: list[str]) -> None:
        table.add_row(label, *values)

    def invariant(result: RunResult, name: str) -> str:
        count = result.report.count(name)
        if count is None:
            return "n/a"
        return f"[red]{count}[/]" if count else "0"

    row("wall time (s)", [f"{r.seconds:.0f}" for r in results])
    row("published keys", [str(len(set(r.tally.keys))) for r in results])
    for name in sorted({name for r in results for name in r.tally.keys_by_workload}):
        row(f"  of which {name}", [str(r.tally.keys_by_workload[name]) for r in results])
    row(
        "publishes (incl. duplicates)",
        [f"{r.tally.publishes} ({r.tally.duplicate_publishes})" for r in results],
    )
    row("pool processes SIGKILLed", [str(r.tally.child_kills) for r in results])
    row("whole workers SIGKILLed", [str(r.tally.worker_kills) for r in results])
    row("broker restarts", [str(r.tally.broker_restarts) for r in results])
    row("publish retries (broker down)", [str(r.tally.publish_retries) for r in results])
    if any(r.swept_enabled for r in results):
        row("re-published by the stuck sweep", [str(r.tally.swept) for r in results])
    for status in ("succeeded", "rejected", "failed"):
        row(f"outcome: {status}", [str(r.report.outcomes.get(status, 0)) for r in results])
    row(
        "terminal outcomes",
        [str(sum(r.report.outcomes.get(s, 0) for s in TERMINAL)) for r in results],
    )
    row("lost (no outcome)", [invariant(r, "lost") for r in results])
    row("applied twice", [invariant(r, "applied_twice") for r in results])
    row("effects without outcome", [invariant(r, "effects_without_outcome") for r in results])
    row("oversold / stock != movements", [invariant(r, "oversold") for r in results])
    row("double loans", [invariant(r, "double_loans") for r in results])
    row("loans != ledger", [invariant(r, "loans_vs_ledger") for r in results])
    row("copy status != loan / hold", [invariant(r, "copy_status") for r in results])
    row("over loan limit", [invariant(r, "over_loan_limit") for r in results])
    return table


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--commands", type=int, default=2000, help="first-wave commands (follow-ups come on top)"
    )
    parser.add_argument(
        "--duration", type=float, default=90, help="seconds of publishing under chaos (at most)"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=60,
        help="seconds to wait for the last outcomes afterwards (at most)",
    )
    parser.add_argument("--rate", type=int, default=150, help="first-wave publishes per second")
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of commands published twice"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--kill-interval",
        type=float,
        nargs=2,
        default=(0.5, 1.5),
        metavar=("MIN", "MAX"),
        help="seconds between kills",
    )
    parser.add_argument(
        "--whole-worker-share",
        type=float,
        default=0.15,
        help="share of kills that take a whole worker (main process too)",
    )
    parser.add_argument(
        "--workload", nargs="+", default=["orders", "loans"], choices=sorted(WORKLOADS)
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sweep",
        type=float,
        default=0,
        metavar="SECONDS",
        help="while draining, run the stuck-command sweep (maintenance job "
        "republish_stuck_commands) every "
        "SECONDS; off by default so the ack comparison stays pure",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--celery-defaults", action="store_true", help="workers use Celery's default ack settings"
    )
    mode.add_argument(
        "--both", action="store_true", help="run with orderq's settings, then Celery's defaults"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from sqlalchemy.orm import sessionmaker

    from worker.adapters.orm import start_mappers
    from worker.service.runner import CommandRunner

    settings = Settings()
    url = settings.require_database_url()
    ensure_database_exists(url)
    upgrade_to_head(url)
    engine = build_engine(settings, pool_size=4, max_overflow=4)
    start_mappers()
    runner = CommandRunner(settings, engine, sessionmaker(bind=engine, expire_on_commit=False))
    console.print(f"[dim]database {describe_url(url)} · private redis-server per run[/]")
    modes = [False, True] if args.both else [args.celery_defaults]
    results = []
    try:
        for celery_defaults in modes:
            label = "Celery defaults" if celery_defaults else "orderq settings"
            console.print(f"running {args.commands} commands with {label} …")
            results.append(ChaosRun(args, celery_defaults).run(settings, engine, runner))
    finally:
        engine.dispose()
    console.print(render(results))
    for result in results:
        if not result.report.ok:
            console.print(f"[red]{result.mode}: invariants broken[/]\n{result.report.explain()}")
            console.print(f"[dim]worker logs: {' '.join(result.logs)}[/]")
    return 0 if all(result.report.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
