"""Run a few long-lived child processes in the foreground and stop them all together.

Each child runs in its own process group (so stopping it reaches its own children,
e.g. the worker's prefork pool, and a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in order). On Linux each child is also
told by the kernel to take SIGTERM when the supervisor dies, so even a SIGKILLed
supervisor leaves no orphans; elsewhere the next `orderq up` stops leftovers from the
pids it recorded (see `orderq/cli/stack.py`).

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

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Start children, relay their output, wait for them to be ready, stop them all."""

    def __init__(self, children: Sequence[Child], cwd: str | None = None) -> None:
        self.children = list(children)
        self.cwd = cwd
        self.stopping = threading.Event()
        self._width = max(len(child.name) for child in self.children)
        self._readers: list[threading.Thread] = []

    def start(self) -> None:
        parent = os.getpid()
        arm = _die_with_parent(parent) if sys.platform.startswith("linux") else None
        # Spawn every child before any reader thread runs: preexec_fn must not run
        # while other threads may hold locks.
        for child in self.children:
            child.process = subprocess.Popen(
                list(child.argv),
                cwd=self.cwd,
                env={**os.environ, **child.env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=arm,
            )
        for index, child in enumerate(self.children):
            reader = threading.Thread(
                target=self._relay, args=(child, COLOURS[index % len(COLOURS)]), daemon=True
            )
            reader.start()
            self._readers.append(reader)

    def _relay(self, child: Child, colour: str) -> None:
        assert child.process is not None and child.process.stdout is not None
        prefix = f"[{colour}]{child.name.ljust(self._width)} |[/] "
        for raw in child.process.stdout:
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

    def wait_for_stop_or_exit(self) -> Child | None:
        """Block until asked to stop (returns None) or a child exits (returns it)."""
        while not self.stopping.wait(0.2):
            for child in self.children:
                if not child.running():
                    return child
        return None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every child's process group (warm shutdown), SIGKILL what lingers."""
        for child in self.children:
            if child.running():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
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
