"""The figures read at scrape time, as Prometheus gauges.

    orderq_queue_depth{queue, source="broker"}     messages ready in the broker
    orderq_queue_depth{queue, source="database"}   commands accepted, not yet taken by a
                                                   worker, with no outcome (tracked
                                                   publishes, HTTP intake)
    orderq_queue_oldest_age_seconds{queue}         the oldest of those (database)
    orderq_dead_letters                            failed commands awaiting an operator
    orderq_quarantined_messages                    unreadable messages kept aside
    orderq_maintenance_interval_seconds{task}      each job's schedule (0: off), for the
                                                   "not succeeding" alert
    orderq_metrics_source_up{source}               1 if the database / broker answered

A source that does not answer costs its gauges for that scrape (and sets its `up` to 0),
never the whole scrape: the workers' counters are still served.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from orderq.observability.sources import BrokerQueues, DatabaseFigures, database_figures
from worker.service.maintenance.catalog import JOBS
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

SOURCE_UP = "orderq_metrics_source_up"
QUEUE_DEPTH = "orderq_queue_depth"
QUEUE_OLDEST_AGE = "orderq_queue_oldest_age_seconds"
DEAD_LETTERS = "orderq_dead_letters"
QUARANTINED = "orderq_quarantined_messages"
MAINTENANCE_INTERVAL = "orderq_maintenance_interval_seconds"
#: every gauge this collector can produce
GAUGES = (
    SOURCE_UP,
    QUEUE_DEPTH,
    QUEUE_OLDEST_AGE,
    DEAD_LETTERS,
    QUARANTINED,
    MAINTENANCE_INTERVAL,
)


class SystemCollector(Collector):
    """Queue depth and age, dead letters and quarantine, read from the database and the
    broker at each scrape (one scrape at a time), and the maintenance schedule."""

    def __init__(self, settings: WorkerSettings, engine: Engine, broker: BrokerQueues) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self._lock = threading.Lock()
        self._complaints: dict[str, str] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queues = [self.settings.command_queue, self.settings.maintenance_queue]
        with self._lock:
            figures = self._read("database", lambda: database_figures(self.engine))
            depths = self._read("broker", lambda: self.broker.depths(queues))
        up = GaugeMetricFamily(
            SOURCE_UP,
            "1 if the source answered this scrape (its gauges are missing otherwise)",
            labels=["source"],
        )
        up.add_metric(["database"], figures is not None)
        up.add_metric(["broker"], depths is not None)
        yield up
        depth = GaugeMetricFamily(
            QUEUE_DEPTH,
            "Commands waiting: ready messages in the broker (source=broker); commands "
            "accepted but not yet taken by a worker, without an outcome (source=database)",
            labels=["queue", "source"],
        )
        for queue, count in (depths or {}).items():
            depth.add_metric([queue, "broker"], count)
        if figures is not None:
            depth.add_metric([self.settings.command_queue, "database"], figures.backlog.queued)
        yield depth
        if figures is not None:
            yield from self._database_gauges(figures)
        yield self._maintenance_schedule()

    def _database_gauges(self, figures: DatabaseFigures) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            QUEUE_OLDEST_AGE,
            "Age of the oldest command accepted but not yet taken by a worker (0: none)",
            labels=["queue"],
        )
        age.add_metric([self.settings.command_queue], figures.backlog.oldest_queued_seconds)
        yield age
        yield GaugeMetricFamily(
            DEAD_LETTERS,
            "Commands that failed for good and wait for an operator (orderq dead-letters list)",
            value=figures.backlog.dead_letters,
        )
        if figures.quarantined is not None:
            yield GaugeMetricFamily(
                QUARANTINED,
                "Unreadable messages kept aside for an operator",
                value=figures.quarantined,
            )

    def _maintenance_schedule(self) -> GaugeMetricFamily:
        interval = GaugeMetricFamily(
            MAINTENANCE_INTERVAL,
            "Seconds between scheduled runs of each maintenance job (0: not scheduled), "
            "from this process's settings",
            labels=["task"],
        )
        for job in JOBS:
            interval.add_metric([job.name], job.interval(self.settings))
        return interval

    def _read(self, source: str, read: Callable[[], T]) -> T | None:
        """The source's figures, or None (logged once per distinct error) if it failed."""
        try:
            value = read()
        except Exception as error:
            problem = f"{error.__class__.__name__}: {' '.join(str(error).split())}"[:300]
            if self._complaints.get(source) != problem:
                self._complaints[source] = problem
                log.warning("metrics: the %s did not answer: %s", source, problem)
            return None
        if self._complaints.pop(source, None) is not None:
            log.info("metrics: the %s answers again", source)
        return value
