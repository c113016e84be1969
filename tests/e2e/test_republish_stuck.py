"""A message the broker lost (the key is recorded, no worker ever saw it) is sent again
by `orderq republish-stuck` and runs once; decided and recent keys are left alone."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from producers.cli.main import app
from producers.outcomes import lookup
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.outcomes import await_outcome, scalar

pytestmark = pytest.mark.e2e

RECORD = text(
    """
    INSERT INTO command_deliveries
        (idempotency_key, command_type, fingerprint, payload, updated_at)
    VALUES (:key, :type, :fingerprint, CAST(:payload AS jsonb), now() - make_interval(secs => :age))
    """
)


def recorded_but_never_sent(engine, command, age: float) -> None:
    """What a publish whose message the broker then lost leaves behind."""
    with engine.begin() as connection:
        connection.execute(
            RECORD,
            {
                "key": command.key,
                "type": command.type,
                "fingerprint": command.fingerprint(),
                "payload": json.dumps(command.message()),
                "age": age,
            },
        )


def test_republish_stuck_sends_lost_messages_again(worker, runner, engine):
    sku = new_product(runner, stock=5)
    lost = order_for(sku, key=unique("LOST"))
    recent = order_for(sku, key=unique("RECENT"))
    decided = order_for(sku, key=unique("DECIDED"))
    recorded_but_never_sent(engine, lost, age=600)
    recorded_but_never_sent(engine, recent, age=5)
    run(runner, decided)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE command_deliveries SET updated_at = now() - interval '10 minutes' "
                "WHERE idempotency_key = :k"
            ),
            {"k": decided.key},
        )
    cli = CliRunner()

    dry = cli.invoke(
        app, ["republish-stuck", "--older-than", "60", "--horizon", "3600", "--dry-run"]
    )
    real = cli.invoke(app, ["republish-stuck", "--older-than", "60", "--horizon", "3600"])
    outcome = await_outcome(engine, lost.key)

    assert dry.exit_code == 0 and real.exit_code == 0, real.output
    assert lost.key in dry.stdout and lost.key in real.stdout
    assert recent.key not in real.stdout and decided.key not in real.stdout
    assert outcome.status == "succeeded"
    assert lookup(engine, recent.key).status == "queued"
    orders = "SELECT count(*) FROM orders WHERE idempotency_key = :k"
    assert scalar(engine, orders, k=lost.key) == 1
    again = cli.invoke(app, ["republish-stuck", "--older-than", "60", "--horizon", "3600"])
    assert lost.key not in again.stdout  # decided now


def test_a_horizon_shorter_than_the_age_is_refused():
    result = CliRunner().invoke(app, ["republish-stuck", "--older-than", "600", "--horizon", "60"])

    assert result.exit_code == 2
    assert "--horizon (60) must be longer than --older-than (600)" in result.output
