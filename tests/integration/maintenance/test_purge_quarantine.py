"""Quarantined messages past the retention window are deleted in bounded batches; the
keys they answered keep their rejection."""

from __future__ import annotations

from sqlalchemy import text

from producers.outcomes import lookup
from tests.integration.test_quarantine import refused
from tests.support.ids import unique
from tests.support.outcomes import scalar
from worker.service.maintenance.quarantine import purge_quarantine


def test_old_quarantined_messages_go_in_batches_and_the_keys_keep_their_answer(
    runner, engine, settings, tuned
):
    keys = [unique("OLD") for _ in range(5)]
    recent = unique("NEW")
    for key in [*keys, recent]:
        runner.quarantine(refused(settings, key))
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE quarantined_messages SET last_seen_at = now() - interval '40 days' "
                "WHERE idempotency_key = ANY(:keys)"
            ),
            {"keys": keys},
        )
    small = tuned(maintenance_batch_size=2, maintenance_max_batches=2)

    first = purge_quarantine(small, engine)
    purge_quarantine(tuned(maintenance_max_batches=1000), engine)  # drain (other tests' rows too)

    assert first.figures["batches"] == 2 and first.figures["more"] is True
    count = "SELECT count(*) FROM quarantined_messages WHERE idempotency_key = ANY(:keys)"
    assert scalar(engine, count, keys=keys) == 0
    assert scalar(engine, count, keys=[recent]) == 1
    assert {lookup(engine, key).reason for key in keys} == {"invalid_command"}
