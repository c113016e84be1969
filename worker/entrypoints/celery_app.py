"""The Celery application: `celery -A worker.entrypoints.celery_app worker`.

Importing this module reads the settings from the environment and nothing more: no
connection is opened and no file is written until a worker or beat starts, and one
started without `DATABASE_URL` / `CELERY_BROKER_URL` exits at once saying so.
"""

from __future__ import annotations

import logging
import sys
from functools import cached_property
from typing import Any

from celery import Celery
from celery.signals import beat_init, celeryd_init, worker_process_init
from kombu import Connection

from producers.broker import publish_retry_policy
from producers.errors import ConfigurationError
from worker.adapters.transport_guard import guard_transport
from worker.entrypoints.celery_config import celery_config
from worker.service.bootstrap import Services, bootstrap
from worker.settings import WorkerSettings

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
        """Exit with a one-line message unless both URLs are configured."""
        try:
            self.settings.require_broker_url()
            self.settings.require_database_url()
        except ConfigurationError as error:
            print(f"orderq: {error}", file=sys.stderr)
            raise SystemExit(2) from None


app = OrderqCelery(WorkerSettings())

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@celeryd_init.connect
@beat_init.connect
def _refuse_without_servers(**_: object) -> None:
    app.require_servers()


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    """A forked child must not reuse the parent's database connections."""
    app.forget_inherited_connections()
