"""The composition root: one place that builds what a worker process runs with.

Entry points (Celery tasks, `orderq maintenance run`, tests, benchmarks) ask for a
`Services` built from one settings object; nothing below reads the environment or
keeps a module-level singleton.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from worker.adapters.engine import build_session_factory, build_worker_engine
from worker.service.failpoints import Failpoints
from worker.service.maintenance.catalog import MaintenanceContext
from worker.service.maintenance.republish import SendCommand
from worker.service.observer import RunObserver
from worker.service.runner import CommandRunner
from worker.service.telemetry import Telemetry
from worker.settings import WorkerSettings


@dataclass
class Services:
    """The engine, the command runner and the maintenance context of one process."""

    settings: WorkerSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    runner: CommandRunner
    send_command: SendCommand
    observer: RunObserver
    maintenance: MaintenanceContext = field(init=False)

    def __post_init__(self) -> None:
        self.maintenance = MaintenanceContext(
            self.settings, self.engine, self.runner, self.send_command, self.observer
        )

    def after_fork(self) -> None:
        """In a forked child: drop the parent's pooled connections without closing them
        (they still belong to the parent)."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        self.engine.dispose()


def bootstrap(
    settings: WorkerSettings,
    send_command: SendCommand,
    *,
    engine: Engine | None = None,
    failpoints: Failpoints | None = None,
) -> Services:
    """Wire a worker process from `settings`.

    `send_command` publishes a stored command message (maintenance re-sends stuck
    commands through it); `engine` lets a caller share one it already has (tests).
    Metrics, decision logs and trace attributes are recorded by a `Telemetry` observer.
    """
    engine = engine or build_worker_engine(settings)
    session_factory = build_session_factory(engine)
    observer = Telemetry(settings)
    runner = CommandRunner(settings, engine, session_factory, failpoints, observer)
    return Services(settings, engine, session_factory, runner, send_command, observer)
