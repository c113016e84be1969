"""A QueuePool that reports its pressure: size, connections in use, overflow, waits,
timeouts and how long each checkout took (the `orderq_db_pool_*` metrics).

SQLAlchemy's pool events say when a connection was checked out, not how long getting
it took, so the worker's engines use this subclass of QueuePool (passed as
`poolclass`), which times `_do_get` — the hook a pool implementation provides for
handing out a connection. The class survives `engine.dispose()` (a recreated pool is
built from `self.__class__`), so a forked worker child keeps reporting.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from sqlalchemy import exc
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from worker.adapters import metrics


def observed_queue_pool(application: str, max_overflow: int) -> type[QueuePool]:
    """A QueuePool class whose instances report under `application` (the label)."""
    size = metrics.POOL_SIZE.labels(application)
    checked_out = metrics.POOL_CHECKED_OUT.labels(application)
    overflow = metrics.POOL_OVERFLOW.labels(application)
    waits = metrics.POOL_WAITS.labels(application)
    timeouts = metrics.POOL_TIMEOUTS.labels(application)
    checkout_seconds = metrics.POOL_CHECKOUT_SECONDS.labels(application)

    class ObservedQueuePool(QueuePool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            size.set(self.size())

        def _report(self) -> None:
            checked_out.set(self.checkedout())
            overflow.set(max(self.overflow(), 0))

        def _do_get(self) -> ConnectionPoolEntry:
            if self.checkedin() == 0 and self.overflow() >= max_overflow:
                waits.inc()
            started = perf_counter()
            try:
                return super()._do_get()
            except exc.TimeoutError:
                timeouts.inc()
                raise
            finally:
                checkout_seconds.observe(perf_counter() - started)
                self._report()

        def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
            super()._do_return_conn(record)
            self._report()

    return ObservedQueuePool
