"""How a worker process ends: with an error status whenever it stops on an error.

Celery logs an unrecoverable error (an exception out of its consumer or event loop)
and then shuts down warm, waiting for running tasks. That shutdown can hang (seen
after a malformed message broke the AMQP channel mid-read), which leaves a process
that is alive and consumes nothing: no supervisor restarts it. After an error, the
process is therefore ended with the error status once `unrecoverable_exit_seconds`
have passed, whatever the shutdown is still waiting for; unacknowledged commands go
back to the broker and are redelivered (late ack).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.apps.worker import Worker

log = logging.getLogger(__name__)


class OrderqWorker(Worker):  # type: ignore[misc]
    """`celery worker`'s worker, with a bounded shutdown after an error."""

    _exit_timer: threading.Timer | None = None

    def stop(self, in_sighandler: bool = False, exitcode: Any = None) -> None:
        if exitcode not in (None, 0) and self._exit_timer is None:
            limit = self.app.settings.unrecoverable_exit_seconds
            log.critical(
                "the worker stops on an error and will exit with status %s "
                "(at the latest in %g s, even if shutting down hangs)",
                exitcode,
                limit,
            )
            code = exitcode if isinstance(exitcode, int) else 1
            self._exit_timer = threading.Timer(limit, _exit_now, args=(code,))
            self._exit_timer.daemon = True
            self._exit_timer.start()
        super().stop(in_sighandler=in_sighandler, exitcode=exitcode)


def _exit_now(code: int) -> None:
    log.critical("shutdown did not finish in time: exiting with status %s now", code)
    logging.shutdown()
    os._exit(code)
