"""The worker's Prometheus metrics: what it decided, how often it tried, its connection
pool and its maintenance runs (docs/observability.md lists them all).

prometheus_client wants one metric object per process, so they are defined here at
module level, once. Safe under prefork: when PROMETHEUS_MULTIPROC_DIR is set before
this module is imported, every process — each prefork child included — writes its
values to its own files in that folder (prometheus_client's multiprocess mode), and
`orderq metrics serve` adds the files up. A decision is thus counted once, by whichever
process made it, and survives that process.

Every metric here has a label, so importing this module writes no file: a value (and
its file) appears when first recorded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram, multiprocess, values

from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

#: accept -> decision: a fast command takes milliseconds, a retried one seconds, a dead
#: letter replayed by an operator hours
DECISION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip
#: waiting for a pooled connection: microseconds when one is free
CHECKOUT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 10, 30)

# -- commands -----------------------------------------------------------------------------

COMMANDS = Counter(
    "orderq_commands",
    "Deliveries that ended in an outcome: decided now (succeeded, rejected, failed = "
    "dead-lettered), answered from the ledger (replayed) or refused because the key was "
    "used for another payload (reused)",
    ["type", "outcome"],
)
ATTEMPTS = Counter(
    "orderq_command_attempts",
    "Attempts counted in the database (a duplicate of a decided key or a dead letter's "
    "redelivery is not an attempt)",
    ["type"],
)
DECISION_SECONDS = Histogram(
    "orderq_decision_seconds",
    "From accept (the command's first record in the database) to its decision",
    ["type"],
    buckets=DECISION_BUCKETS,
)

# -- database pool (per process; gauges are summed over the live processes) -----------------

POOL_SIZE = Gauge(
    "orderq_db_pool_size",
    "Connections the pools keep open (pool_size per process), live processes summed",
    ["application"],
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "orderq_db_pool_checked_out",
    "Connections in use right now, live processes summed",
    ["application"],
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "orderq_db_pool_overflow",
    "Connections open beyond pool_size (at most max_overflow each), live processes summed",
    ["application"],
    multiprocess_mode="livesum",
)
POOL_WAITS = Counter(
    "orderq_db_pool_waits",
    "Checkouts that found every connection in use (overflow included) and had to wait",
    ["application"],
)
POOL_TIMEOUTS = Counter(
    "orderq_db_pool_timeouts",
    "Checkouts that gave up after ORDERQ_POOL_TIMEOUT_SECONDS",
    ["application"],
)
POOL_CHECKOUT_SECONDS = Histogram(
    "orderq_db_pool_checkout_seconds",
    "Time to get a connection from the pool (a free one, a new one, or waiting for one)",
    ["application"],
    buckets=CHECKOUT_BUCKETS,
)

# -- maintenance ----------------------------------------------------------------------------

# The maintenance job's label is `task`, not `job`: Prometheus gives every scraped series
# a `job` label of its own (the scrape job) and would rename ours to `exported_job`.
MAINTENANCE_RUNS = Counter(
    "orderq_maintenance_runs",
    "Maintenance job runs by result: succeeded, skipped (another run held the job's "
    "advisory lock) or failed",
    ["task", "result"],
)
MAINTENANCE_LAST_SUCCESS = Gauge(
    "orderq_maintenance_last_success_timestamp_seconds",
    "Unix time of the job's last successful run (by any process since the metrics "
    "folder was created)",
    ["task"],
    multiprocess_mode="max",
)


# -- multiprocess mode ------------------------------------------------------------------------

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def multiprocess_enabled() -> bool:
    """True when prometheus_client writes to files (PROMETHEUS_MULTIPROC_DIR was in the
    environment when it was imported)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prepare_multiprocess_dir(settings: WorkerSettings) -> Path | None:
    """Create the metrics folder if configured; say so if prometheus_client will not use it.

    Called when a worker or beat starts (and by `orderq metrics serve`).
    """
    folder = settings.prometheus_multiproc_dir
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    if not multiprocess_enabled():
        log.warning(
            "PROMETHEUS_MULTIPROC_DIR=%s is configured but prometheus_client is not in "
            "multiprocess mode: the variable must be in the process environment (not only "
            "in .env) before the process starts; metrics of this process are not shared",
            folder,
        )
    return folder


def forget_process(settings: WorkerSettings, pid: int) -> None:
    """Drop the live gauges (pool) of a process that exits; its counters stay counted."""
    if settings.prometheus_multiproc_dir is not None and multiprocess_enabled():
        multiprocess.mark_process_dead(pid, str(settings.prometheus_multiproc_dir))


def forget_dead_processes(settings: WorkerSettings) -> list[int]:
    """Drop the live gauges of processes that died without saying so (SIGKILL, OOM).

    The folder must only be written by processes of this host's process namespace (see
    docs/observability.md), so a pid that does not exist here is a dead writer.
    """
    folder = settings.prometheus_multiproc_dir
    return [] if folder is None else forget_dead_writers(folder)


def forget_dead_writers(folder: Path) -> list[int]:
    """`forget_dead_processes` for one folder (not its sub-folders); the pids swept."""
    if not folder.is_dir():
        return []
    dead = set()
    for path in folder.iterdir():
        found = _LIVE_GAUGE_FILE.match(path.name)
        if found and not _alive(int(found.group(1))):
            dead.add(int(found.group(1)))
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):  # another process swept it first
            multiprocess.mark_process_dead(pid, str(folder))
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    return True
