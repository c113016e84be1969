"""What the runner and the maintenance jobs tell whoever watches them (metrics, logs,
traces), without knowing who that is.

The composition root (worker.service.bootstrap) wires in `worker.service.telemetry`;
without it (unit tests, a runner built by hand) nothing is told. An observer must be
cheap — it runs on every delivery — and must never raise into the command path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from worker.service.maintenance.report import RunReport
    from worker.service.runner import Result


@dataclass
class Delivery:
    """One delivery of one message, as the runner saw it (filled in as it goes)."""

    #: the command type of the task that received it ("unknown" for an unknown task
    #: name); never read from the message, so a label built from it stays bounded
    command_type: str
    key: str | None = None
    #: the attempt number the database counted for this delivery; None when none was
    #: counted (a duplicate of a decided key, a dead letter, an unreadable message)
    attempt: int | None = None
    #: seconds between the command's accept (its first record in the database) and the
    #: start of this attempt, by the database's clock
    accepted_seconds_ago: float | None = None
    started: float = field(default_factory=perf_counter)
    attempt_started: float | None = None

    def counted(self, key: str, attempt: int, accepted_seconds_ago: float) -> None:
        self.key = key
        self.attempt = attempt
        self.accepted_seconds_ago = accepted_seconds_ago
        self.attempt_started = perf_counter()

    def decision_seconds(self, now: float) -> float | None:
        """Accept -> decision, when this delivery counted an attempt."""
        if self.accepted_seconds_ago is None or self.attempt_started is None:
            return None
        return self.accepted_seconds_ago + (now - self.attempt_started)


class RunObserver(Protocol):
    """Told about every attempt, every delivery's end and every maintenance run."""

    def attempt_counted(self, delivery: Delivery) -> None: ...

    def finished(self, delivery: Delivery, result: Result) -> None: ...

    def maintenance_run(
        self, job: str, report: RunReport | None, seconds: float, error: BaseException | None
    ) -> None: ...


class NoObserver:
    """Tells no one."""

    def attempt_counted(self, delivery: Delivery) -> None:
        pass

    def finished(self, delivery: Delivery, result: Result) -> None:
        pass

    def maintenance_run(
        self, job: str, report: RunReport | None, seconds: float, error: BaseException | None
    ) -> None:
        pass


NO_OBSERVER = NoObserver()
