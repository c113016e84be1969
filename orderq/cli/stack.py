"""`orderq up` (the whole stack in the foreground) and `orderq down` (stop the embedded
servers)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from orderq.cli.console import (
    FAILED,
    console,
    err_console,
    fail,
    resolved_settings,
    settings_or_fail,
)
from orderq.cli.ops import ConcurrencyOption, migrate_or_fail
from orderq.cli.supervisor import Child, RestartPolicy, Supervisor
from orderq.cli.values import seconds, whole_number
from orderq.embedded.processes import LockHeld, locked
from orderq.settings import Settings

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
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()  # SIGTERM to the child itself: a warm shutdown
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


def _api_answers(port: int) -> bool:
    """The HTTP API's app is started (its lifespan ran): /healthz answers 200."""
    import urllib.request

    url = f"http://127.0.0.1:{port}/healthz"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
        return response.status == 200
    return False


def _metrics_folder(settings: Settings, data_dir: Path) -> dict[str, str]:
    """The environment that makes every child record metrics for `orderq metrics serve`:
    the configured PROMETHEUS_MULTIPROC_DIR, else a folder of the data dir, emptied
    first (prometheus_client's advice: a fresh folder per run)."""
    if settings.prometheus_multiproc_dir is not None:
        return {}
    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(folder)}


def _children(
    data_dir: Path,
    concurrency: int,
    port: int,
    auth: str,
    ports: dict[str, int],
    env: dict[str, str],
):
    return [
        Child(
            "worker",
            orderq_command("worker", f"--concurrency={concurrency}"),
            ready_text=" ready.",
            env=env,
        ),
        Child(
            "maintenance", orderq_command("maintenance", "worker"), ready_text=" ready.", env=env
        ),
        Child(
            "beat",
            orderq_command("beat", f"--schedule={data_dir / 'celerybeat-schedule'}"),
            ready_text="beat: Starting",
            env=env,
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
        Child(
            "api",
            orderq_command("serve", "--host=127.0.0.1", f"--port={ports['api']}"),
            ready_text="Listening at:",
            env=env,
        ),
        Child(
            "metrics",
            orderq_command("metrics", "serve", f"--port={ports['metrics']}", "--host=127.0.0.1"),
            ready_text="serving metrics on",
            env=env,
        ),
    ]


def up(
    concurrency: ConcurrencyOption = 2,
    flower_port: Annotated[
        int,
        typer.Option(
            "--flower-port",
            parser=whole_number(1, 65535),
            metavar="PORT",
            help="Flower's port (127.0.0.1).",
        ),
    ] = 5555,
    api_port: Annotated[
        int,
        typer.Option(
            "--api-port",
            parser=whole_number(1, 65535),
            metavar="PORT",
            help="The HTTP API's port (127.0.0.1).",
        ),
    ] = 8080,
    metrics_port: Annotated[
        int,
        typer.Option(
            "--metrics-port",
            parser=whole_number(1, 65535),
            metavar="PORT",
            help="Prometheus metrics' port (127.0.0.1).",
        ),
    ] = 9532,
    ready_timeout: Annotated[
        float,
        typer.Option(
            "--ready-timeout",
            parser=seconds(1),
            metavar="SECONDS",
            help="Seconds to wait for start-up.",
        ),
    ] = 120.0,
    max_restarts: Annotated[
        int,
        typer.Option(
            "--max-restarts",
            parser=whole_number(0),
            metavar="N",
            help="Restarts of a crashed process within 10 minutes before giving up.",
        ),
    ] = 5,
) -> None:
    """Migrate, then run the workers, beat, Flower, the HTTP API and the metrics server in
    the foreground until Ctrl-C.

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
        fail(f"port {flower_port} is in use: pick another with --flower-port", code=FAILED)
    if len({flower_port, api_port, metrics_port}) < 3:
        fail("--flower-port, --api-port and --metrics-port must differ")
    for flag, port in (("--api-port", api_port), ("--metrics-port", metrics_port)):
        if _listening(port):
            fail(f"port {port} is in use: pick another with {flag}", code=FAILED)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(data_dir / "up.lock", wait=0, what="orderq up"))
        except LockHeld as held:
            fail(
                f"{held} for the data folder {data_dir}: stop it first (Ctrl-C there)", code=FAILED
            )
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
        env = _metrics_folder(settings, data_dir)
        supervisor = Supervisor(
            _children(
                data_dir,
                concurrency,
                flower_port,
                auth,
                {"api": api_port, "metrics": metrics_port},
                env,
            ),
            policy=RestartPolicy(max_restarts=max_restarts),
        )
        supervisor.on_spawn = lambda: _record_children(data_dir, supervisor.children)
        code = _run(
            supervisor,
            data_dir,
            lambda: _listening(flower_port) and _api_answers(api_port),
            ready_timeout,
            lambda: _say_ready(flower_port, auth, generated, api_port, metrics_port),
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
    supervisor: Supervisor,
    data_dir: Path,
    listening: Callable[[], bool],
    timeout: float,
    say_ready: Callable[[], None],
) -> int:
    """Run the children until a signal (exit 0), a child exits during start-up or keeps
    crashing afterwards, or start-up times out (1)."""
    problem = None
    with supervisor.signals_stop():
        supervisor.start()
        try:
            _record_children(data_dir, supervisor.children)
            exited = supervisor.wait_ready(timeout, extra=listening)
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
            console.print(f"stopping {_names(supervisor)} …")
            supervisor.stop()
    if problem:
        err_console.print(f"[bold red]error:[/] {problem}; the others were stopped")
        return 1
    console.print(f"stopped {_names(supervisor)}")
    return 0


def _names(supervisor: Supervisor) -> str:
    names = [child.name for child in supervisor.children]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _say_ready(port: int, auth: str, generated: bool, api_port: int, metrics_port: int) -> None:
    user, _, password = auth.partition(":")
    login = (
        f"user [bold]{user}[/] · password [bold]{password}[/] (development credentials)"
        if generated
        else f"user [bold]{user}[/] (credentials from FLOWER_BASIC_AUTH)"
    )
    console.print(
        Panel.fit(
            "[bold green]orderq is up[/]: worker, maintenance worker, beat, Flower, the "
            "HTTP API and metrics server are running\n"
            f"Flower: http://127.0.0.1:{port}\n"
            f"  {login}\n"
            f"HTTP API: http://127.0.0.1:{api_port} (docs/http.md)\n"
            "  a token for it: orderq api-keys create --client NAME\n"
            f"Prometheus metrics: http://127.0.0.1:{metrics_port}/metrics\n"
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
        fail(f"{held} for {data_dir}: stop it first (Ctrl-C there), then orderq down", code=FAILED)
    except (EmbeddedServerError, ImportError) as error:
        fail(f"could not stop the embedded servers: {error}", code=FAILED)
    if not stopped:
        console.print(f"no embedded server is running for {data_dir}")
        return
    names = {"postgres": "PostgreSQL", "redis": "Redis"}
    what = " and ".join(f"{names[name]} (pid {pid})" for name, pid in stopped.items())
    console.print(f"stopped the embedded {what}; data kept in {data_dir}")
