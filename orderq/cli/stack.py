"""`orderq up` (the whole stack in the foreground) and `orderq down` (stop the embedded
servers)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from orderq.cli.console import console, err_console, fail, resolved_settings, settings_or_fail
from orderq.cli.ops import migrate_or_fail
from orderq.cli.supervisor import Child, RestartPolicy, Supervisor
from orderq.embedded.processes import LockHeld, locked

FLOWER_USER = "orderq"


def orderq_command(*arguments: str) -> list[str]:
    """The `orderq` command line, run by this same Python (no console script needed)."""
    return [sys.executable, "-m", "orderq.cli", *arguments]


def _state_file(data_dir: Path) -> Path:
    return data_dir / "up.json"


def _stop_leftovers(data_dir: Path) -> None:
    """Stop processes that a killed `orderq up` left behind (on Linux the kernel has
    usually done it already: every child gets SIGTERM when `orderq up` dies)."""
    import psutil

    state = _state_file(data_dir)
    try:
        previous = json.loads(state.read_text())
    except (FileNotFoundError, ValueError):
        return
    leftovers = []
    for child in previous.get("children", []):
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(child["pid"])
            # the same process, not a later one that got the same pid
            if abs(process.create_time() - child["started"]) < 1.0:
                leftovers.append((child["name"], process))
    for name, process in leftovers:
        console.print(f"stopping {name} (pid {process.pid}) left by an orderq up that was killed")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    _gone, alive = psutil.wait_procs([p for _, p in leftovers], timeout=30)
    for process in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    state.unlink(missing_ok=True)


def _record_children(data_dir: Path, children: list[Child]) -> None:
    import psutil

    recorded = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):  # one waiting to be restarted
            started = psutil.Process(child.pid).create_time()
            recorded.append({"name": child.name, "pid": child.pid, "started": started})
    state = {"pid": os.getpid(), "children": recorded}
    _state_file(data_dir).write_text(json.dumps(state))


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _children(data_dir: Path, concurrency: int, port: int, auth: str):
    return [
        Child(
            "worker", orderq_command("worker", f"--concurrency={concurrency}"), ready_text=" ready."
        ),
        Child("maintenance", orderq_command("maintenance", "worker"), ready_text=" ready."),
        Child(
            "beat",
            orderq_command("beat", f"--schedule={data_dir / 'celerybeat-schedule'}"),
            ready_text="beat: Starting",
        ),
        Child(
            "flower",
            orderq_command("flower", f"--port={port}", "--address=127.0.0.1"),
            ready_text="Visit me at",
            env={
                "FLOWER_BASIC_AUTH": auth,
                "ORDERQ_FLOWER_STATE_FILE": str(data_dir / "flower-state.db"),
            },
        ),
    ]


def up(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Worker processes.")
    ] = 2,
    flower_port: Annotated[
        int, typer.Option("--flower-port", min=1, max=65535, help="Flower's port (127.0.0.1).")
    ] = 5555,
    ready_timeout: Annotated[
        float, typer.Option("--ready-timeout", min=1, help="Seconds to wait for start-up.")
    ] = 120.0,
    max_restarts: Annotated[
        int,
        typer.Option(
            "--max-restarts",
            min=0,
            help="Restarts of a crashed process within 10 minutes before giving up.",
        ),
    ] = 5,
) -> None:
    """Migrate, then run the workers, beat and Flower in the foreground until Ctrl-C.

    With no DATABASE_URL/CELERY_BROKER_URL set, the embedded PostgreSQL and Redis are
    started first (and keep running afterwards: `orderq down` stops them).

    A process that crashes once everything is up is restarted after 1 s, 2 s, 4 s … (at
    most 30 s); one that crashes more than --max-restarts times in 10 minutes stops the
    stack with an error.
    """
    settings = settings_or_fail()
    data_dir = settings.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if _listening(flower_port):
        fail(f"port {flower_port} is in use: pick another with --flower-port", code=1)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(data_dir / "up.lock", wait=0, what="orderq up"))
        except LockHeld as held:
            fail(f"{held} for the data folder {data_dir}: stop it first (Ctrl-C there)", code=1)
        _stop_leftovers(data_dir)
        resolved = resolved_settings(settings)
        assert resolved.database_url is not None
        migrate_or_fail(resolved.database_url)
        configured = settings.flower_basic_auth
        generated = configured is None or not configured.get_secret_value()
        auth = (
            f"{FLOWER_USER}:{secrets.token_urlsafe(12)}"
            if generated
            else configured.get_secret_value()  # type: ignore[union-attr]
        )
        supervisor = Supervisor(
            _children(data_dir, concurrency, flower_port, auth),
            policy=RestartPolicy(max_restarts=max_restarts),
        )
        supervisor.on_spawn = lambda: _record_children(data_dir, supervisor.children)
        code = _run(
            supervisor,
            data_dir,
            flower_port,
            ready_timeout,
            lambda: _say_ready(flower_port, auth, generated),
        )
        _state_file(data_dir).unlink(missing_ok=True)
        if settings.uses_embedded_servers:
            console.print(
                f"the embedded PostgreSQL and Redis keep running (data in {data_dir}); "
                "stop them with: orderq down"
            )
    if code:
        raise typer.Exit(code)


def _run(
    supervisor: Supervisor, data_dir: Path, port: int, timeout: float, say_ready: Callable[[], None]
) -> int:
    """Run the children until a signal (exit 0), a child exits during start-up or keeps
    crashing afterwards, or start-up times out (1)."""
    problem = None
    with supervisor.signals_stop():
        supervisor.start()
        try:
            _record_children(data_dir, supervisor.children)
            exited = supervisor.wait_ready(timeout, extra=lambda: _listening(port))
            if exited is not None:
                assert exited.process is not None
                problem = f"{exited.name} exited with code {exited.process.returncode}"
            elif not supervisor.stopping.is_set():
                say_ready()
                given_up = supervisor.watch()
                if given_up is not None:
                    problem = given_up[1]
        except TimeoutError as error:
            problem = str(error)
        finally:
            console.print("stopping worker, maintenance, beat and flower …")
            supervisor.stop()
    if problem:
        err_console.print(f"[bold red]error:[/] {problem}; the others were stopped")
        return 1
    console.print("stopped worker, maintenance, beat and flower")
    return 0


def _say_ready(port: int, auth: str, generated: bool) -> None:
    user, _, password = auth.partition(":")
    login = (
        f"user [bold]{user}[/] · password [bold]{password}[/] (development credentials)"
        if generated
        else f"user [bold]{user}[/] (credentials from FLOWER_BASIC_AUTH)"
    )
    console.print(
        Panel.fit(
            "[bold green]orderq is up[/]: worker, maintenance worker, beat and Flower are running\n"
            f"Flower: http://127.0.0.1:{port}\n"
            f"  {login}\n"
            "try: orderq demo · orderq publish --help · stop: Ctrl-C",
            title="orderq up",
        ),
        highlight=False,
    )


def down() -> None:
    """Stop the embedded PostgreSQL and Redis (their data is kept)."""
    from orderq.embedded import EmbeddedServerError, stop

    settings = settings_or_fail()
    if not settings.uses_embedded_servers:
        console.print(
            "DATABASE_URL / CELERY_BROKER_URL are set, so orderq runs no embedded servers: "
            "nothing to stop"
        )
        return
    data_dir = settings.data_dir.expanduser().resolve()
    if not data_dir.is_dir():
        console.print(f"no embedded server has run for {data_dir}: nothing to stop")
        return
    try:
        with locked(data_dir / "up.lock", wait=0, what="orderq up"):
            stopped = stop(data_dir)
    except LockHeld as held:
        fail(f"{held} for {data_dir}: stop it first (Ctrl-C there), then orderq down", code=1)
    except (EmbeddedServerError, ImportError) as error:
        fail(f"could not stop the embedded servers: {error}", code=1)
    if not stopped:
        console.print(f"no embedded server is running for {data_dir}")
        return
    names = {"postgres": "PostgreSQL", "redis": "Redis"}
    what = " and ".join(f"{names[name]} (pid {pid})" for name, pid in stopped.items())
    console.print(f"stopped the embedded {what}; data kept in {data_dir}")
