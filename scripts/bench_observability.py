"""What observability adds to one command, measured against a baseline in the same run.

    python scripts/bench_observability.py [--rounds 7] [--calls 20000]

No database, no broker: the two pieces of code observability puts on the command path,
timed in this process, each next to what runs without it —
  observer  the runner's two calls per delivery (attempt counted, delivery finished)
            through the real Telemetry, vs the do-nothing observer;
  pool      a checkout and return through the worker's QueuePool subclass (gauges,
            timer, wait/timeout counters), vs SQLAlchemy's plain QueuePool, on a fake
            DBAPI connection.
Set PROMETHEUS_MULTIPROC_DIR (to an empty folder) to time the multiprocess mode the
workers run in. Each figure is the best of `--rounds` (the least disturbed by other
load); prints microseconds per call and the difference, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.pool import QueuePool

from worker.adapters.metrics import multiprocess_enabled
from worker.adapters.pool_metrics import observed_queue_pool
from worker.service.observer import NO_OBSERVER, Delivery, RunObserver
from worker.service.outcome import Outcome
from worker.service.telemetry import Telemetry
from worker.settings import WorkerSettings


class FakeConnection:
    """Just enough DBAPI connection for the pool's reset-on-return."""

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def best_of(rounds: int, calls: int, body: Callable[[], None]) -> float:
    """Microseconds per call, the best of `rounds`."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            body()
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def delivery_through(observer: RunObserver) -> Callable[[], None]:
    outcome = Outcome.succeeded("bench-key", {"order_number": "ORD-000001"})

    def one() -> None:
        delivery = Delivery("place_order")
        delivery.counted("bench-key", 1, 0.004)
        observer.attempt_counted(delivery)
        observer.finished(delivery, outcome)

    return one


def checkout_from(pool_class: type[QueuePool]) -> Callable[[], None]:
    pool = pool_class(FakeConnection, pool_size=5, max_overflow=5, timeout=1)

    def one() -> None:
        pool.connect().close()

    return one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    telemetry = Telemetry(WorkerSettings())
    observed = observed_queue_pool("bench", max_overflow=5)
    # interleaved, so a burst of load hits both sides alike
    figures = {}
    for name, body in (
        ("observer off", delivery_through(NO_OBSERVER)),
        ("observer on", delivery_through(telemetry)),
        ("plain pool", checkout_from(QueuePool)),
        ("observed pool", checkout_from(observed)),
    ):
        figures[name] = best_of(args.rounds, args.calls, body)
    mode = "multiprocess files" if multiprocess_enabled() else "in-process values"
    print(f"prometheus_client: {mode}; best of {args.rounds} x {args.calls} calls")
    print(
        f"per delivery, observer:  off {figures['observer off']:.2f} us · "
        f"on {figures['observer on']:.2f} us · "
        f"added {figures['observer on'] - figures['observer off']:.2f} us"
    )
    print(
        f"per checkout + return:   plain {figures['plain pool']:.2f} us · "
        f"observed {figures['observed pool']:.2f} us · "
        f"added {figures['observed pool'] - figures['plain pool']:.2f} us"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
