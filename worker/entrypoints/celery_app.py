"""The Celery application: `celery -A worker.entrypoints.celery_app worker`.

Importing this module reads the settings from the environment and nothing more: no
connection is opened and no file is written until a worker or beat starts, and one
started without `DATABASE_URL` / `CELERY_BROKER_URL` exits at once saying so.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery
from celery.signals import (
    beat_init,
    celeryd_init,
    worker_process_init,
    worker_process_shutdown,
)
from kombu import Connection
from kombu.utils.objects import cached_property

from producers.broker import publish_retry_policy
from producers.errors import ConfigurationError
from worker.adapters import metrics, tracing
from worker.adapters.transport_guard import guard_transport
from worker.entrypoints.celery_config import celery_config
from worker.entrypoints.log_format import configure_logging
from worker.service.bootstrap import Services, bootstrap
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

TASK_MODULES = [
    "worker.entrypoints.tasks",
    "worker.entrypoints.maintenance.tasks",
    "worker.entrypoints.bench_tasks",
]


class OrderqCelery(Celery):
    """Celery, plus orderq's settings and the services each process builds once."""

    def __init__(self, settings: WorkerSettings) -> None:
        super().__init__("orderq")
        self.settings = settings
        self.conf.update(celery_config(settings))
        self.conf.include = TASK_MODULES
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        """This process's engine, runner and maintenance context (built on first use,
        so a forked pool process builds its own)."""
        if self._services is None:
            self._services = bootstrap(self.settings, self.send_command)
        return self._services

    def connection_for_read(self, url: str | None = None, **kwargs: Any) -> Connection:
        """The consuming connection, on the guarded transport (transport_guard.py): what
        the broker client cannot read is quarantined instead of killing the worker."""
        return guard_transport(super().connection_for_read(url, **kwargs))

    @cached_property
    def Worker(self) -> type:
        """`celery worker`'s worker: exits with an error status after an error."""
        return self.subclass_with_self("worker.entrypoints.lifecycle:OrderqWorker")

    def send_command(self, task_name: str, key: str, message: dict[str, Any]) -> None:
        """Publish a stored command message to the command queue (with retries)."""
        self.send_task(
            task_name,
            args=[message],
            queue=self.settings.command_queue,
            retry=True,
            retry_policy=publish_retry_policy(self.settings),
        )

    def forget_inherited_connections(self) -> None:
        if self._services is not None:
            self._services.after_fork()

    def require_servers(self) -> None:
        """Exit with a one-line message (exit code 2) unless both URLs are configured (and
        tracing, if asked for, can start)."""
        try:
            self.settings.require_servers()
            tracing.check_tracing(self.settings)
        except ConfigurationError as error:
            print(f"orderq: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    @cached_property
    def Beat(self) -> type:
        """`celery beat`, refusing to start without servers before it does anything.

        Celery sends `beat_init` only after beat has opened its schedule file, printed its
        banner and redirected stderr into its log; checking here keeps the refusal one
        clean line and leaves no file behind.
        """
        base = self.subclass_with_self("celery.apps.beat:Beat")
        app = self

        class OrderqBeat(base):  # type: ignore[misc, valid-type]
            def run(self) -> None:
                app.require_servers()
                super().run()

        return OrderqBeat

    def start_tracing(self, service_name: str) -> None:
        """Trace this process if the OTEL_* settings ask for it (see adapters/tracing.py)."""
        try:
            tracing.configure_tracing(self.settings, service_name=service_name)
        except ConfigurationError as error:  # checked at start-up; only a race gets here
            log.error("tracing not started: %s", error)


app = OrderqCelery(WorkerSettings())

configure_logging(app.settings)


# A worker checks before its banner; `beat_init` covers a beat embedded in a worker (-B).
@celeryd_init.connect
@beat_init.connect
def _refuse_without_servers(**_: object) -> None:
    app.require_servers()
    metrics.prepare_multiprocess_dir(app.settings)


@celeryd_init.connect
def _forget_dead_processes(**_: object) -> None:
    """Live gauges (the pool's) left by processes of an earlier run that were killed."""
    metrics.forget_dead_processes(app.settings)


@beat_init.connect
def _trace_beat(**_: object) -> None:
    app.start_tracing("orderq-beat")


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    """A forked child must not reuse the parent's database connections; it starts its
    own tracer (an exporter's thread does not survive a fork). A new child often
    replaces a killed one: drop the live gauges that one left."""
    app.forget_inherited_connections()
    app.start_tracing("orderq-worker")
    metrics.forget_dead_processes(app.settings)


@worker_process_shutdown.connect
def _child_exits(pid: int | None = None, **_: object) -> None:
    """Sent in a pool process that exits cleanly: export its last spans and drop its live
    gauges (its counters stay counted). A killed one is swept by the next child."""
    active = tracing.active()
    if active is not None:
        active.flush()
    if pid is not None:
        metrics.forget_process(app.settings, pid)
