"""Run a few long-lived child processes in the foreground and stop them all together.

Each child runs in its own process group (so stopping it reaches its own children,
e.g. the worker's prefork pool, and a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in order). On Linux each child is also
told by the kernel to take SIGTERM when the supervisor dies, so even a SIGKILLed
supervisor leaves no orphans; elsewhere the next `orderq up` stops leftovers from the
pids it recorded (see `orderq/cli/stack.py`).

Once everything is up, a child that exits on its own (a worker that crashed) is
started again after a backoff that doubles per crash (`RestartPolicy`), each restart
reported on the console; a child that keeps crashing is given up on, and the caller
stops the rest.

Output of every child is printed line by line with its name in front, like honcho.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.markup import escape

from orderq.cli.console import console

COLOURS = ("cyan", "magenta", "green", "yellow", "blue")
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """preexec_fn: ask Linux to SIGTERM this child when its parent dies."""

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the request took effect
            os._exit(1)

    return arm


# A restart happens while reader threads run, when preexec_fn is no longer safe (the
# forked child may wait for a lock another thread held); the same request is then made
# by a small Python program that execs the child's command. Linux keeps the parent-death
# signal across exec.
_DIE_WITH_PARENT_THEN_EXEC = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0); "
    "os.getppid() == int(sys.argv[1]) or os._exit(1); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


@dataclass(frozen=True)
class RestartPolicy:
    """How a child that exits on its own is started again.

    The delay doubles per crash from `first_delay` up to `max_delay`, and starts over
    once the child has run `stable_after` seconds; more than `max_restarts` restarts
    within `window` seconds and the child is given up on.
    """

    max_restarts: int = 5
    window: float = 600.0
    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0


@dataclass
class _Restarts:
    """A child's crash history."""

    times: list[float] = field(default_factory=list)
    consecutive: int = 0
    started_at: float = 0.0
    due_at: float | None = None


@dataclass
class Child:
    """One supervised process: its command, and the log line that says it is ready."""

    name: str
    argv: Sequence[str]
    ready_text: str
    env: dict[str, str] = field(default_factory=dict)
    quiet: bool = False  # keep its output (for errors) instead of printing it
    process: subprocess.Popen[bytes] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    output: list[str] = field(default_factory=list)
    restarts: _Restarts = field(default_factory=_Restarts)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Start children, relay their output, wait for them to be ready, restart the ones
    that crash, stop them all."""

    def __init__(
        self,
        children: Sequence[Child],
        cwd: str | None = None,
        policy: RestartPolicy | None = None,
        on_spawn: Callable[[], None] | None = None,
    ) -> None:
        self.children = list(children)
        self.cwd = cwd
        self.policy = policy or RestartPolicy()
        self.on_spawn = on_spawn  # after a restart (e.g. to record the new pids)
        self.stopping = threading.Event()
        self._width = max(len(child.name) for child in self.children)
        self._readers: list[threading.Thread] = []

    def start(self) -> None:
        parent = os.getpid()
        arm = _die_with_parent(parent) if sys.platform.startswith("linux") else None
        # Spawn every child before any reader thread runs: preexec_fn must not run
        # while other threads may hold locks.
        for child in self.children:
            self._spawn(child, list(child.argv), arm)
        for child in self.children:
            self._read(child)

    def _spawn(self, child: Child, argv: list[str], arm: Callable[[], None] | None) -> None:
        child.process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env={**os.environ, **child.env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=arm,
        )
        child.restarts.started_at = time.monotonic()

    def _read(self, child: Child) -> None:
        colour = COLOURS[self.children.index(child) % len(COLOURS)]
        assert child.process is not None
        reader = threading.Thread(
            target=self._relay, args=(child, child.process, colour), daemon=True
        )
        reader.start()
        self._readers.append(reader)

    def _relay(self, child: Child, process: subprocess.Popen[bytes], colour: str) -> None:
        assert process.stdout is not None
        prefix = f"[{colour}]{child.name.ljust(self._width)} |[/] "
        with process.stdout:  # closed at the end: a restarted child gets a new pipe
            for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                child.output.append(line)
                del child.output[:-200]
                if child.ready_text in line:
                    child.ready.set()
                if not child.quiet:
                    console.print(prefix + escape(line), highlight=False, soft_wrap=True)

    def wait_ready(self, timeout: float, extra: Callable[[], bool] = lambda: True) -> Child | None:
        """Wait until every child logged its ready line and `extra()` holds; return a
        child that exited meanwhile (None when all are ready). TimeoutError if slow."""
        deadline = time.monotonic() + timeout
        while True:
            for child in self.children:
                if not child.running():
                    return child
            if all(child.ready.is_set() for child in self.children) and extra():
                return None
            if self.stopping.is_set():
                return None
            if time.monotonic() >= deadline:
                slow = [c.name for c in self.children if not c.ready.is_set()] or ["flower"]
                raise TimeoutError(f"{', '.join(slow)} not ready after {timeout:.0f}s")
            time.sleep(0.1)

    def watch(self) -> tuple[Child, str] | None:
        """Run until asked to stop (returns None), restarting children that exit on
        their own; returns a child that keeps crashing, with why it was given up on."""
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            for child in self.children:
                if child.running():
                    continue
                given_up = self._after_exit(child, now)
                if given_up is not None:
                    return child, given_up
        return None

    def _after_exit(self, child: Child, now: float) -> str | None:
        """Schedule or perform the restart of an exited child (None), or give up (why)."""
        history, policy = child.restarts, self.policy
        if history.due_at is not None:
            if now >= history.due_at:
                self._restart(child)
            return None
        assert child.process is not None
        code = child.process.returncode
        ran = now - history.started_at
        history.consecutive = 1 if ran >= policy.stable_after else history.consecutive + 1
        history.times = [t for t in history.times if now - t < policy.window]
        if len(history.times) >= policy.max_restarts:
            return (
                f"{child.name} exited with code {code} and was restarted "
                f"{len(history.times)} times in {policy.window:g} s already: giving up"
            )
        history.times.append(now)
        delay = min(policy.max_delay, policy.first_delay * 2 ** (history.consecutive - 1))
        history.due_at = now + delay
        console.print(
            f"[bold yellow]{escape(child.name)} exited with code {code} after {ran:.1f} s; "
            f"restarting it in {delay:g} s (restart {len(history.times)} of at most "
            f"{policy.max_restarts} in {policy.window:g} s)[/]",
            highlight=False,
        )
        return None

    def _restart(self, child: Child) -> None:
        child.restarts.due_at = None
        child.ready.clear()
        argv = list(child.argv)
        if sys.platform.startswith("linux"):
            argv = [sys.executable, "-c", _DIE_WITH_PARENT_THEN_EXEC, str(os.getpid()), *argv]
        self._spawn(child, argv, None)
        self._read(child)
        console.print(f"[yellow]{escape(child.name)} restarted (pid {child.pid})[/]")
        if self.on_spawn is not None:
            self.on_spawn()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every child (a warm shutdown), SIGKILL its process group if it lingers.

        The signal goes to the child itself, not its process group: a Celery worker then
        stops taking messages and lets its pool finish (and acknowledge) what it is
        deciding, while a group SIGTERM would kill the pool processes mid-transaction
        (their work rolled back and redelivered: safe, but not a warm shutdown)."""
        for child in self.children:
            if child.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            assert child.process is not None
            try:
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                console.print(f"[red]{child.name} did not stop in {timeout:.0f}s: killing it[/]")
        for child in self.children:
            # Also sweeps grandchildren that outlived their parent (a pool process).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            assert child.process is not None
            child.process.wait(10)
        for reader in self._readers:
            reader.join(5)
        for child in self.children:
            if child.process is not None and child.process.stdout is not None:
                child.process.stdout.close()

    @contextlib.contextmanager
    def signals_stop(self):
        """While inside: SIGINT/SIGTERM ask the supervisor to stop (a second one kills)."""

        def request_stop(signum: int, _frame: object) -> None:
            if self.stopping.is_set():
                for child in self.children:
                    if child.running():
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(child.pid, signal.SIGKILL)
                return
            self.stopping.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
