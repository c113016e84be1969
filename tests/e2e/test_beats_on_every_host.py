"""Three beats at once (as on three hosts) send every scheduled run exactly once."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import redis
from sqlalchemy import text

from tests.support.beats import BeatProcess
from tests.support.environment import TEST_BROKER_URL
from tests.support.eventually import eventually
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.e2e

#: short intervals for three cheap jobs, every other job off
INTERVALS = {"expire_unpaid_orders": 2, "expire_ready_reservations": 2, "mark_overdue_loans": 3}
OFF = (
    "PURGE_LEDGER",
    "ANALYZE",
    "INDEX_HEALTH",
    "STATEMENT_SNAPSHOT",
    "REPUBLISH_STUCK",
    "RESTORE_DRILL",
)
SLOTS_PER_JOB = 5


def claims_since(engine, since: datetime) -> list[tuple[str, datetime, int, str]]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT job, scheduled_for, runs, claimed_by FROM schedule_claims "
                    "WHERE job = ANY(:jobs) AND scheduled_for >= :since ORDER BY job, scheduled_for"
                ),
                {"jobs": list(INTERVALS), "since": since},
            ).all()
        )


def test_three_beats_send_each_run_once_and_the_worker_runs_it_once(engine):
    from worker.service.maintenance.catalog import JOBS_BY_NAME

    settings_of = {name: JOBS_BY_NAME[name].schedule_setting for name in INTERVALS}
    queue = f"beats-{uuid.uuid4().hex[:8]}.maintenance"
    env = {
        "ORDERQ_MAINTENANCE_QUEUE": queue,
        **{f"ORDERQ_{settings_of[name].upper()}": str(every) for name, every in INTERVALS.items()},
        **{f"ORDERQ_SCHEDULE_{job}_SECONDS": "0" for job in OFF},
    }
    maintenance = WorkerProcess(concurrency=1, env=env, queues=queue, name="beats-maint")
    beats = [BeatProcess(env, name=f"beat-{host}") for host in ("a", "b", "c")]
    since = datetime.now(UTC) + timedelta(seconds=1)
    maintenance.start()
    try:
        for beat in beats:
            beat.start()

        def enough_slots_claimed() -> bool:
            claimed = claims_since(engine, since)
            return all(
                sum(1 for job, *_ in claimed if job == name) >= SLOTS_PER_JOB for name in INTERVALS
            )

        eventually(enough_slots_claimed, timeout=90, what=f"{SLOTS_PER_JOB} runs of each job")
        assert all(beat.is_running() for beat in beats)
        for beat in beats:
            beat.stop()
        claims = eventually(
            lambda: (
                (rows := claims_since(engine, since))
                and all(runs >= 1 for *_, runs, _ in rows)
                and rows
            ),
            timeout=60,
            what="the maintenance worker to run every claimed run",
        )
    finally:
        for beat in beats:
            beat.stop()
        maintenance.stop()
        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(TEST_BROKER_URL)
            for key in client.scan_iter(match=f"{queue}*"):
                client.delete(key)
            client.close()

    assert [runs for _, _, runs, _ in claims] == [1] * len(claims), claims  # none twice
    for name, every in INTERVALS.items():
        slots = [scheduled for job, scheduled, *_ in claims if job == name]
        steps = {(later - earlier).total_seconds() for earlier, later in pairwise(slots)}
        assert steps == {every}, (name, slots)  # no run skipped, none named twice
        assert all(slot.timestamp() % every == 0 for slot in slots)  # on the epoch grid
