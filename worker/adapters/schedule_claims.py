"""`schedule_claims`: each scheduled maintenance run, claimed once across every beat.

A beat inserts (job, scheduled_for) before it sends a run; the primary key lets only
one insert through, so beats on several hosts send each run exactly once. The
maintenance worker counts the runs it started on the same row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

_CLAIM = text(
    "INSERT INTO schedule_claims (job, scheduled_for, claimed_by) "
    "VALUES (:job, :scheduled_for, :claimed_by) "
    "ON CONFLICT (job, scheduled_for) DO NOTHING RETURNING claimed_at"
)
# bounded: a beat forgets at most this many old claims of a job per run it claims
_FORGET_OLD = text(
    "DELETE FROM schedule_claims WHERE (job, scheduled_for) IN ("
    " SELECT job, scheduled_for FROM schedule_claims"
    " WHERE job = :job AND scheduled_for < :before ORDER BY scheduled_for LIMIT :limit)"
)
# An upsert, not an UPDATE: the run can reach a worker before the beat that sent it
# has committed its claim. The insert then waits on the claim's key until that commit
# and counts on the committed row; only a run whose claim was never committed makes a
# row of its own (so it still shows up, as unclaimed).
_RAN = text(
    "INSERT INTO schedule_claims (job, scheduled_for, claimed_by, runs, last_ran_at) "
    "VALUES (:job, :scheduled_for, '(unclaimed)', 1, now()) "
    "ON CONFLICT (job, scheduled_for) DO UPDATE "
    "SET runs = schedule_claims.runs + 1, last_ran_at = now() "
    "RETURNING claimed_by"
)


def claim_run(
    connection: Connection,
    job: str,
    scheduled_for: datetime,
    claimed_by: str,
    retention: timedelta,
    forget_at_most: int = 100,
) -> bool:
    """Insert the claim in the caller's transaction; True if this caller got it.

    A concurrent claim of the same run waits until the first one's transaction ends:
    committed, it finds the row taken; rolled back (the send failed), it gets the run.
    Claims older than `retention` are forgotten along the way.
    """
    claimed = connection.execute(
        _CLAIM, {"job": job, "scheduled_for": scheduled_for, "claimed_by": claimed_by}
    ).first()
    if claimed is not None:
        connection.execute(
            _FORGET_OLD,
            {"job": job, "before": scheduled_for - retention, "limit": forget_at_most},
        )
    return claimed is not None


def record_run(engine: Engine, job: str, scheduled_for: datetime) -> bool:
    """Count one start of a run; False if no beat had claimed it."""
    with engine.begin() as connection:
        claimed_by = connection.execute(
            _RAN, {"job": job, "scheduled_for": scheduled_for}
        ).scalar_one()
    return claimed_by != "(unclaimed)"
