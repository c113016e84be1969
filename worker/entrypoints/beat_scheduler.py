"""Celery beat on every host: each scheduled run is claimed in PostgreSQL before it is sent.

Two pieces make several beats send each run exactly once:

- `GridSchedule`: an interval schedule aligned to a grid that every host computes the
  same way — run k of a job with interval I is due at k·I seconds after the Unix epoch
  (UTC). Every beat wakes just after the same boundary and names the run by the same
  instant (`scheduled_for`), instead of by its own last run, which differs per host.
- `ClaimingScheduler`: before sending a run it inserts (job, scheduled_for) into
  `schedule_claims`; only the beat whose insert went through sends it, in the same
  transaction, so a send that fails releases the claim to the other beats.

The beat keeps no state file: the claims table is its memory. Hosts need synchronised
clocks (NTP); a clock off by more than an interval would name a different run.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.beat import ScheduleEntry, Scheduler, SchedulingError
from celery.schedules import schedstate, schedule
from sqlalchemy import Engine

from producers.database import build_engine
from worker.adapters.schedule_claims import claim_run
from worker.settings import WorkerSettings

log = logging.getLogger("orderq.beat")


def grid_slot(moment: datetime, interval: timedelta) -> datetime:
    """The start of the grid slot holding `moment`: floor(t / I) · I since the epoch."""
    seconds = interval.total_seconds()
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, tz=UTC)


class GridSchedule(schedule):
    """Every `run_every`, on the epoch-aligned grid (the same instants on every host)."""

    def slot(self, moment: datetime | None = None) -> datetime:
        return grid_slot(moment or self.now(), self.run_every)

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now()
        current = self.slot(now)
        wait = (current + self.run_every - now).total_seconds()
        last = self.maybe_make_aware(last_run_at) if last_run_at is not None else None
        # Due once per slot: a beat that starts mid-slot waits for the next boundary.
        return schedstate(last is None or self.slot(last) < current, wait)

    def __repr__(self) -> str:
        return f"<grid every {self.human_seconds}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.run_every, self.relative, self.nowfun)


class ClaimingScheduler(Scheduler):
    """Sends a run of an orderq job only if this beat claimed it in PostgreSQL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._engine: Engine | None = None
        self.claimed_by = f"{socket.gethostname()}:{os.getpid()}"
        super().__init__(*args, **kwargs)

    @property
    def settings(self) -> WorkerSettings:
        return self.app.settings  # type: ignore[no-any-return]

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.settings, pool_size=1, max_overflow=1)
        return self._engine

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        if not isinstance(entry.schedule, GridSchedule):
            return super().apply_async(entry, producer, advance, **kwargs)
        scheduled_for = entry.schedule.slot()
        retention = timedelta(days=self.settings.schedule_claim_retention_days)
        try:
            with self.engine.connect() as connection, connection.begin():
                if not claim_run(connection, entry.name, scheduled_for, self.claimed_by, retention):
                    log.info("%s at %s: sent by another beat", entry.name, scheduled_for)
                    return None
                run = copy.copy(entry)
                run.kwargs = {**entry.kwargs, "scheduled_for": scheduled_for.isoformat()}
                # A send that raises rolls the claim back: another beat may send it.
                sent = super().apply_async(run, producer, advance, **kwargs)
                log.info("%s at %s: claimed and sent", entry.name, scheduled_for)
                return sent
        except SchedulingError:
            raise  # the send failed (claim rolled back); beat logs it
        except Exception as error:  # the database: no claim, no send
            log.warning(
                "%s at %s: not sent, the claim failed (%s: %s)",
                entry.name,
                scheduled_for,
                error.__class__.__name__,
                " ".join(str(error).split())[:300],
            )
            return None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
