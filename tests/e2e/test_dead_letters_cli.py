"""`orderq dead-letters …` as an operator uses it: a command that failed is listed,
shown, replayed through a real worker (still applied once) or discarded for good."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orderq.cli.main import app
from producers.outcomes import lookup
from tests.support.commands import new_product, order_for
from tests.support.ids import unique
from tests.support.outcomes import scalar, stock_of
from worker.adapters.deliveries import DeliveryLog
from worker.service.failpoints import Failpoints
from worker.service.runner import CommandRunner

pytestmark = pytest.mark.e2e

cli = CliRunner()


def orderq(*args: str):
    return cli.invoke(app, list(args))


@pytest.fixture
def dead_letter(settings, engine, session_factory, runner):
    """A place-order command that failed its only attempt (an injected transient fault)."""
    sku = new_product(runner, stock=3)
    command = order_for(sku, qty=2, key=unique("DL"))
    failing = CommandRunner(
        settings.model_copy(update={"max_attempts": 1}),
        engine,
        session_factory,
        Failpoints(f"before_commit=raise@{command.key}"),
    )
    assert failing.run(command.message(), command.type).status == "failed"
    return command, sku


def test_list_show_and_replay_a_dead_letter(worker, engine, dead_letter):
    command, sku = dead_letter

    listed = orderq("dead-letters", "list", "--json", "--limit", "10000")
    shown = orderq("dead-letters", "show", command.key, "--json")
    replayed = orderq("dead-letters", "replay", command.key, "--wait", "30")

    assert listed.exit_code == 0
    entry = next(e for e in json.loads(listed.stdout) if e["key"] == command.key)
    assert (entry["state"], entry["attempts"]) == ("failed", 1)
    assert "injected fault" in entry["last_error"]
    assert json.loads(shown.stdout)["payload"] == command.message()
    assert replayed.exit_code == 0, replayed.output
    assert f"{command.key}: succeeded" in replayed.stdout
    assert lookup(engine, command.key).status == "succeeded"
    assert (
        scalar(engine, "SELECT count(*) FROM orders WHERE idempotency_key = :k", k=command.key) == 1
    )
    assert stock_of(engine, sku) == (3, 2)
    assert json.loads(orderq("dead-letters", "show", command.key, "--json").stdout)["replays"] == 1

    again = orderq("dead-letters", "replay", command.key)
    assert again.exit_code == 1  # a state the command cannot act on (docs/cli.md)
    assert "already has an outcome (succeeded)" in again.output


def test_discard_keeps_the_reason_and_refuses_a_replay(engine, dead_letter):
    command, _ = dead_letter

    blank = orderq("dead-letters", "discard", command.key, "--reason", "  ")
    discarded = orderq(
        "dead-letters", "discard", command.key, "--reason", "customer cancelled", "--by", "alice"
    )
    shown = json.loads(orderq("dead-letters", "show", command.key, "--json").stdout)
    replay = orderq("dead-letters", "replay", command.key)
    listed = orderq("dead-letters", "list", "--state", "discarded", "--json", "--limit", "10000")

    assert blank.exit_code == 2 and "--reason must not be empty" in blank.output
    assert discarded.exit_code == 0, discarded.output
    assert (shown["state"], shown["discard_reason"], shown["discarded_by"]) == (
        "discarded",
        "customer cancelled",
        "alice",
    )
    assert shown["discarded_at"] is not None
    status = lookup(engine, command.key)
    assert (status.status, status.reason, status.message) == (
        "failed",
        "discarded",
        "customer cancelled",
    )
    assert replay.exit_code == 1 and "was discarded (customer cancelled)" in replay.output
    assert command.key in {entry["key"] for entry in json.loads(listed.stdout)}


def test_clear_errors_for_unknown_keys_and_live_commands(engine):
    live = order_for("ANY-SKU", key=unique("LIVE"))
    DeliveryLog(engine).record_attempt(live.key, live.type, live.fingerprint(), live.message())

    unknown = orderq("dead-letters", "show", "NO-SUCH-KEY")
    running = orderq("dead-letters", "replay", live.key)
    discard = orderq("dead-letters", "discard", live.key, "--reason", "x")

    assert unknown.exit_code == 1
    assert "NO-SUCH-KEY: no such key" in unknown.output
    assert running.exit_code == 1
    assert f"{live.key} is running, not failed: only failed commands can be replayed" in (
        " ".join(running.output.split())
    )
    assert discard.exit_code == 1 and "only failed commands can be discarded" in discard.output
