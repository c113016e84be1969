"""What one scrape of orderq's /metrics returns, and the engine its queries use.

Two parts: the metrics every orderq process recorded (decisions, attempts, latency,
pool, maintenance, HTTP requests) and the figures read at scrape time (queues, dead
letters, quarantine; see `collector`).

Recorded metrics come from prometheus_client's multiprocess files when
PROMETHEUS_MULTIPROC_DIR is set: the folder's own `*.db` files and those of its direct
sub-folders (one per container sharing a volume, see docs/observability.md), added up.
Without it only this process's own metrics are there — enough for a single-process
HTTP service, not for prefork workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from orderq.observability.collector import SystemCollector
from orderq.observability.sources import BrokerQueues
from producers.database import build_engine
from worker.adapters.metrics import forget_dead_writers, multiprocess_enabled
from worker.settings import WorkerSettings


class MultiprocessFiles(Collector):
    """The metrics every process wrote under `folder` and its direct sub-folders."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def files(self) -> list[str]:
        return sorted(
            str(path) for pattern in ("*.db", "*/*.db") for path in self.folder.glob(pattern)
        )

    def collect(self) -> Iterable[Metric]:
        # The live gauges of writers killed without a word (SIGKILL, OOM) go before they
        # are added up; only this folder's: a sub-folder's writers live in another
        # container's process ids (docs/observability.md).
        forget_dead_writers(self.folder)
        # A process that exits removes its own files (and a starting one sweeps those of
        # dead pids): one can vanish between listing and reading. List again then,
        # rather than answer the scrape with an error.
        for _ in range(4):
            try:
                return MultiProcessCollector.merge(self.files(), accumulate=True)
            except FileNotFoundError:
                continue
        return MultiProcessCollector.merge(self.files(), accumulate=True)


def recorded_metrics(settings: WorkerSettings) -> Collector:
    """Every orderq process's recorded metrics (multiprocess files), else this process's."""
    folder = settings.prometheus_multiproc_dir
    if folder is not None and multiprocess_enabled():
        return MultiprocessFiles(folder)
    return REGISTRY


def scrape_registry(
    settings: WorkerSettings, engine: Engine, broker: BrokerQueues
) -> CollectorRegistry:
    """The registry a /metrics endpoint serves."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(recorded_metrics(settings))
    registry.register(SystemCollector(settings, engine, broker))
    return registry


def metrics_engine(settings: WorkerSettings, timeout_ms: int) -> Engine:
    """One or two connections for the scrape queries, each cut off after `timeout_ms`."""
    guarded = settings.model_copy(
        update={
            "statement_timeout_ms": timeout_ms,
            "lock_timeout_ms": min(settings.lock_timeout_ms, timeout_ms),
            "application_name": f"{settings.application_name}-metrics"[:63],
        }
    )
    return build_engine(
        guarded, pool_size=1, max_overflow=1, pool_timeout=timeout_ms / 1000, pool_pre_ping=True
    )
