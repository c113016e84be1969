"""Re-sending commands that were accepted but never reached a worker."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from producers.command_log import CommandLog
from producers.database import transaction
from producers.publisher import Publisher
from tests.support.commands import new_product, order_for
from tests.support.concurrency import at_once
from tests.support.ids import unique
from tests.support.outcomes import await_outcome, scalar, stock_of
from worker.service.maintenance.republish import republish_stuck

pytestmark = pytest.mark.e2e


def accepted_but_lost(engine, command, minutes_ago: int = 30, republished: int = 0) -> None:
    """What a lost message leaves behind: a `queued` delivery row and nothing else."""
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO command_deliveries (idempotency_key, command_type, fingerprint,
                    payload, state, republished, created_at, updated_at)
                VALUES (:key, :type, :fp, CAST(:payload AS jsonb), 'queued', :republished,
                    now() - make_interval(mins => :ago), now() - make_interval(mins => :ago))
                """
            ),
            {
                "key": command.key,
                "type": command.type,
                "fp": command.fingerprint(),
                "payload": json.dumps(command.message()),
                "republished": republished,
                "ago": minutes_ago,
            },
        )


def times_republished(engine, key: str) -> int:
    return scalar(
        engine, "SELECT republished FROM command_deliveries WHERE idempotency_key = :k", k=key
    )


@pytest.fixture
def resend(settings):
    with Publisher(settings, track=False) as publisher:
        yield publisher


def test_a_lost_command_is_sent_again_and_completes_once(worker, runner, engine, settings, resend):
    tuned = settings.model_copy(update={"stuck_command_after_seconds": 600})
    sku = new_product(runner, stock=3)
    lost, recent = order_for(sku), order_for(sku)
    accepted_but_lost(engine, lost, minutes_ago=30)
    accepted_but_lost(engine, recent, minutes_ago=1)

    first = republish_stuck(tuned, engine, resend.send)
    outcome = await_outcome(engine, lost.key)
    second = republish_stuck(tuned, engine, resend.send)

    assert first.figures["republished"] >= 1
    assert outcome.status == "succeeded"
    assert times_republished(engine, lost.key) == 1  # the second run left it alone
    assert times_republished(engine, recent.key) == 0  # not old enough yet
    assert second.skipped is None
    assert stock_of(engine, sku) == (3, 1)


def test_a_command_is_republished_at_most_the_configured_number_of_times(
    runner, engine, settings, resend
):
    tuned = settings.model_copy(
        update={"stuck_command_after_seconds": 600, "republish_max_times": 2}
    )
    sku = new_product(runner, stock=1)
    exhausted = order_for(sku)
    accepted_but_lost(engine, exhausted, minutes_ago=30, republished=2)

    republish_stuck(tuned, engine, resend.send)

    assert times_republished(engine, exhausted.key) == 2
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM command_ledger WHERE idempotency_key = :k",
            k=exhausted.key,
        )
        == 0
    )


def test_two_concurrent_runs_send_each_stuck_command_once(worker, runner, engine, settings, resend):
    tuned = settings.model_copy(
        update={"stuck_command_after_seconds": 600, "maintenance_batch_size": 2}
    )
    sku = new_product(runner, stock=10)
    lost = [order_for(sku) for _ in range(6)]
    for command in lost:
        accepted_but_lost(engine, command)

    at_once(
        lambda: republish_stuck(tuned, engine, resend.send),
        lambda: republish_stuck(tuned, engine, resend.send),
    )

    assert [times_republished(engine, c.key) for c in lost] == [1] * 6
    assert {await_outcome(engine, c.key).status for c in lost} == {"succeeded"}
    assert stock_of(engine, sku) == (10, 6)


def test_commands_accepted_over_http_and_never_published_are_sent_by_maintenance(
    worker, runner, engine, settings, resend
):
    """No API process left to relay them: maintenance publishes them once
    `unpublished_command_after_seconds` old, long before the stuck-command threshold."""
    tuned = settings.model_copy(
        update={"unpublished_command_after_seconds": 60, "stuck_command_after_seconds": 3600}
    )
    sku = new_product(runner, stock=2)
    orphan, fresh = order_for(sku, key=unique("@orphan/o")), order_for(sku, key=unique("@f/o"))
    with transaction(engine) as connection:
        log = CommandLog(connection)
        for command in (orphan, fresh):
            log.accept(command.key, command.type, command.fingerprint(), command.message())
        connection.execute(  # accepted two minutes ago by an API process that died
            "UPDATE command_deliveries SET created_at = now() - interval '2 minutes' "
            "WHERE idempotency_key = %s",
            (orphan.key,),
        )

    report = republish_stuck(tuned, engine, resend.send)

    assert report.figures["published"] >= 1
    assert await_outcome(engine, orphan.key).status == "succeeded"
    published = "SELECT published_at IS NOT NULL FROM command_deliveries WHERE idempotency_key = :k"
    assert scalar(engine, published, k=orphan.key) is True
    assert scalar(engine, published, k=fresh.key) is False  # still its relay's to send
    assert times_republished(engine, orphan.key) == 0  # published, not re-published
    with engine.begin() as connection:  # leave no unpublished command behind
        connection.execute(
            text("DELETE FROM command_deliveries WHERE idempotency_key = :k"), {"k": fresh.key}
        )
