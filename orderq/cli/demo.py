"""`orderq demo`: publish a realistic burst and show, from the database, what happened."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from orderq.cli.console import FAILED, console, err_console, fail, resolved_settings
from orderq.cli.stack import migrate_or_fail, orderq_command
from orderq.cli.supervisor import Child, Supervisor
from orderq.cli.values import seconds, whole_number
from orderq.demo import SCENARIOS, Check, DemoRun, Scenario
from orderq.demo.waves import Broadcaster, Wave
from orderq.demo.waves import Progress as Tracker
from orderq.settings import Settings
from producers.database import build_engine


def _workers_on(settings: Settings, broker_url: str) -> list[str]:
    """Names of the workers consuming the command queue (asked over the broker)."""
    from celery import Celery

    app = Celery("orderq-demo", broker=broker_url, set_as_current=False)
    try:
        replies = app.control.inspect(timeout=1.5).active_queues() or {}
    finally:
        app.close()
    return [
        name
        for name, queues in replies.items()
        if any(queue.get("name") == settings.command_queue for queue in queues)
    ]


def _run_waves(
    scenario: Scenario,
    engine: Engine,
    broadcaster: Broadcaster,
    timeout: float,
    stop: threading.Event,
) -> str | None:
    """Publish every wave and wait for the workers; the problem, if one stopped us."""
    columns = (
        TextColumn("{task.description:<40}"),
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        TextColumn("done · {task.fields[sent]:>2} sent"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console) as progress:
        for wave in scenario.waves():
            problem = _run_wave(wave, engine, broadcaster, progress, timeout, stop)
            if problem:
                return problem
    return None


def _run_wave(
    wave: Wave,
    engine: Engine,
    broadcaster: Broadcaster,
    progress: Progress,
    timeout: float,
    stop: threading.Event,
) -> str | None:
    with engine.connect() as connection:
        deliveries = wave.build(connection)
    tracker = Tracker(engine, deliveries)
    task = progress.add_task(wave.title, total=len(deliveries), sent=0)
    lock = threading.Lock()
    sent = [0]

    def one_sent() -> None:
        with lock:
            sent[0] += 1
            progress.update(task, sent=sent[0])

    broadcaster.send_all(deliveries, one_sent)
    if stop.is_set():
        return "interrupted"
    finished = tracker.wait(timeout, lambda n: progress.update(task, completed=n))
    if stop.is_set():
        return "interrupted"
    if not finished:
        processed, _ = tracker.done()
        return (
            f"{wave.title}: only {processed} of {len(deliveries)} deliveries were processed "
            f"in {timeout:.0f}s (is the worker running?)"
        )
    return None


def _render(scenario: Scenario, engine: Engine) -> list[Check]:
    with engine.connect() as connection:
        rows = scenario.summary(connection)
        checks = list(scenario.checks(connection))
    table = Table(title=f"{scenario.title}: what happened (read from the database)")
    table.add_column("", style="bold")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("", style="dim")
    for row in rows:
        table.add_row(row.label, row.value, row.note)
    console.print(table)
    verdicts = Table(title=f"{scenario.title}: invariants, verified with queries")
    verdicts.add_column("", no_wrap=True)
    verdicts.add_column("check", style="bold")
    verdicts.add_column("", style="dim")
    for check in checks:
        mark = "[green]✓ passed[/]" if check.passed else "[bold red]✗ FAILED[/]"
        verdicts.add_row(mark, check.name, check.detail)
    console.print(verdicts)
    return checks


def demo(
    worker_concurrency: Annotated[
        int,
        typer.Option(
            "--worker-concurrency",
            parser=whole_number(1, 64),
            metavar="N",
            help="Processes of the demo's own worker.",
        ),
    ] = 4,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", parser=seconds(1), metavar="SECONDS", help="Seconds to wait for each wave."
        ),
    ] = 60.0,
) -> None:
    """Publish a realistic burst of commands and show exactly-once at work.

    Uses the running workers (orderq up) or, if none listens, starts one for the demo.
    Every number in the final tables is read back from the database.
    """
    settings = resolved_settings()
    database_url, broker_url = settings.database_url, settings.broker_url
    assert database_url is not None and broker_url is not None
    migrate_or_fail(database_url)
    supervisor = None
    if workers := _workers_on(settings, broker_url):
        console.print(f"using the running worker(s): {', '.join(workers)}")
    else:
        console.print(
            f"no worker listens on {settings.command_queue}: starting one for the demo "
            "(`orderq up` runs one that stays)"
        )
        child = Child(
            "worker",
            orderq_command("worker", f"--concurrency={worker_concurrency}"),
            ready_text=" ready.",
            quiet=True,
        )
        supervisor = Supervisor([child])
    run = DemoRun()
    console.print(f"demo run [bold]{run.tag}[/]: keys {run.keys}, SKUs {run.skus}")
    engine = build_engine(settings, pool_size=10, max_overflow=5)
    broadcaster = Broadcaster(settings, engine)
    stop = threading.Event()
    failed: list[Check] = []
    problem = None
    try:
        if supervisor is not None:
            with supervisor.signals_stop():
                supervisor.start()
                try:
                    problem = _start_worker(supervisor, timeout)
                    if problem is None:
                        problem, failed = _play(
                            run, engine, broadcaster, timeout, supervisor.stopping
                        )
                finally:
                    supervisor.stop()
        else:
            problem, failed = _play(run, engine, broadcaster, timeout, stop)
    finally:
        broadcaster.close()
        engine.dispose()
    if problem:
        fail(problem, code=FAILED)
    if failed:
        fail(f"{len(failed)} invariant(s) failed: {', '.join(c.name for c in failed)}", code=FAILED)
    console.print("[bold green]all invariants hold[/]")


def _start_worker(supervisor: Supervisor, timeout: float) -> str | None:
    try:
        exited = supervisor.wait_ready(timeout)
    except TimeoutError as error:
        return f"the demo's worker did not start: {error}"
    if exited is not None:
        tail = "\n".join(exited.output[-15:])
        return f"the demo's worker exited during start-up:\n{tail}"
    return "interrupted" if supervisor.stopping.is_set() else None


def _play(
    run: DemoRun, engine: Engine, broadcaster: Broadcaster, timeout: float, stop: threading.Event
) -> tuple[str | None, list[Check]]:
    failed: list[Check] = []
    scenarios: Sequence[Scenario] = [factory(run) for factory in SCENARIOS]
    for scenario in scenarios:
        problem = _run_waves(scenario, engine, broadcaster, timeout, stop)
        if problem:
            return problem, failed
        failed += [check for check in _render(scenario, engine) if not check.passed]
    return None, failed
