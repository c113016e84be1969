"""The quarantine on the real database: a refused message is kept once however often it
comes, its key is answered through the executor (unless it already has an outcome), the
database refuses rows that break its rules, and operators list, show and discard.

And the other half of the issue's bookkeeping: a later delivery that reuses a key with
another payload is refused, remembered, and reported by the lookup next to the key's
first outcome.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from orderq.admin.quarantine import Quarantine, QuarantineError, decoded_body, safe_text
from producers.commands import PlaceOrder
from producers.outcomes import lookup
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.outcomes import ledger_rows, scalar
from tests.support.sessions import wait_until_sessions_wait
from worker.adapters.envelope import EnvelopeRules, RawMessage, classify_envelope
from worker.adapters.quarantine import QuarantineLog, QuarantineRecord
from worker.service.runner import RetryLater

UPSERT = "orderq.orders.upsert_product"


def refused(settings, key: str | None, headers: dict | None = None, **command) -> QuarantineRecord:
    """The record the consumer captures for a message without an id header."""
    body = {"type": "upsert_product", "key": key, "sku": "Q-1", "name": "n", "price_cents": 1}
    body.update(command)
    raw = RawMessage(
        headers if headers is not None else {"task": UPSERT},
        json.dumps([[body], {}, None]).encode(),
        "application/json",
        "utf-8",
        {"priority": 0},
        {"routing_key": "q"},
    )
    verdict = classify_envelope(raw, EnvelopeRules.from_settings(settings, [UPSERT]))
    return QuarantineRecord.capture(raw, verdict, "redis", "orderq.commands", 65536)


def test_a_quarantined_message_is_kept_once_and_its_key_answered(runner, engine, settings):
    key = unique("Q")
    record = refused(settings, key)

    first = runner.quarantine(record)
    again = runner.quarantine(record)  # redelivered after a crash, or sent again

    assert (first.status, first.reason) == ("rejected", "invalid_command")
    assert again.replayed and again.reason == "invalid_command"
    [row] = Quarantine(engine).list(key=key)
    assert (row.problem, row.deliveries, row.rejection) == ("header", 2, "invalid_command")
    assert row.reason == "headers.id: missing; expected a task id of 1-255"
    status = lookup(engine, key)
    assert (status.status, status.reason, status.message) == (
        "rejected",
        "invalid_command",
        row.reason,
    )
    assert ledger_rows(engine, key) == 1


def test_one_message_quarantined_by_two_workers_at_once_is_kept_once_and_answered_once(
    runner, engine, settings
):
    # Redis hands an unacknowledged message out again after its visibility timeout:
    # two workers can quarantine the same message at the same moment.
    key = unique("Q")
    record = refused(settings, key)
    holder = engine.raw_connection()
    try:
        first = QuarantineLog(holder.driver_connection).record(record)  # not committed yet
        with ThreadPoolExecutor(1) as pool:
            other = pool.submit(runner.quarantine, record)
            wait_until_sessions_wait(engine, 1)  # the second waits on the first's row
            holder.commit()
            answer = other.result(timeout=30)
    finally:
        holder.close()

    assert first.deliveries == 1
    [row] = Quarantine(engine).list(key=key)
    assert (row.id, row.deliveries) == (first.id, 2)
    assert (answer.status, answer.reason) == ("rejected", "invalid_command")
    assert ledger_rows(engine, key) == 1


def test_a_key_that_already_has_an_outcome_keeps_it(runner, engine, settings):
    sku = new_product(runner, stock=1)
    order = order_for(sku)
    placed = run(runner, order)
    record = refused(settings, order.key)

    runner.quarantine(record)

    assert lookup(engine, order.key).result == placed.result
    assert Quarantine(engine).list(key=order.key)[0].problem == "header"


def test_an_expired_message_answers_its_key_as_expired(runner, engine, settings):
    key = unique("EXP")
    record = refused(settings, key, {"task": UPSERT, "id": key, "expires": "2001-01-01T00:00:00"})

    runner.quarantine(record)

    status = lookup(engine, key)
    assert (status.status, status.reason) == ("rejected", "expired")
    assert "before a worker received it" in status.message


def test_a_message_without_a_usable_key_is_kept_without_an_answer(runner, engine, settings):
    marker = unique("NOKEY")
    record = refused(settings, "has space", {"task": UPSERT, "id": marker, "retries": "x"})

    runner.quarantine(record)

    [row] = Quarantine(engine).list(problem="header", limit=500)[:1] or [None]
    stored = scalar(
        engine,
        "SELECT idempotency_key IS NULL FROM quarantined_messages WHERE task_id = :m",
        m=marker,
    )
    assert stored is True
    assert row is not None


def test_the_store_failing_retries_instead_of_dropping(runner, settings, monkeypatch):
    def unavailable(record):
        raise OSError("database went away")

    monkeypatch.setattr(runner.quarantine_store, "record", unavailable)

    assert isinstance(runner.quarantine(refused(settings, unique("Q"))), RetryLater)


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ("rejection = NULL", "rejection_iff_key"),
        ("problem = 'bored'", "problem_allowed"),
        ("state = 'discarded'", "discard_audited"),
        ("state = 'replayed'", "replay_audited"),
        ("body_size = 0", "body_within_size"),
        ("deliveries = 0", "deliveries_positive"),
    ],
)
def test_the_database_refuses_a_quarantine_row_that_breaks_its_rules(
    runner, engine, settings, change, constraint
):
    key = unique("Q")
    runner.quarantine(refused(settings, key))

    with pytest.raises(IntegrityError, match=constraint), engine.begin() as connection:
        connection.execute(
            text(f"UPDATE quarantined_messages SET {change} WHERE idempotency_key = :k"),
            {"k": key},
        )


def test_operators_show_and_discard_with_a_reason_kept(runner, engine, settings):
    key = unique("Q")
    runner.quarantine(refused(settings, key, name="\x1b[31mred\u202e"))
    store = Quarantine(engine)
    [listed] = store.list(key=key)

    shown = store.get(listed.id)
    discarded = store.discard(listed.id, "  sent by a test  ", "ops")

    decoded_as, body = decoded_body(shown.body)
    assert decoded_as == "JSON" and "\x1b" not in body and "\u202e" not in body
    assert "\\u001b[31mred\\u202e" in body  # escaped, shown as text
    assert (discarded.state, discarded.discard_reason, discarded.discarded_by) == (
        "discarded",
        "sent by a test",
        "ops",
    )
    assert store.list(key=key) == []
    with pytest.raises(QuarantineError, match="was discarded"):
        store.discard(listed.id, "again", "ops")
    with pytest.raises(QuarantineError, match="no such quarantined message"):
        store.get(10**12)
    with pytest.raises(QuarantineError, match="needs a reason"):
        store.discard(listed.id, "  ", "ops")


def test_a_message_is_repaired_only_when_it_carries_a_valid_command(runner, engine, settings):
    good, bad = unique("Q"), unique("Q")
    runner.quarantine(refused(settings, good))
    runner.quarantine(refused(settings, bad, price_cents=-1))
    store = Quarantine(engine)
    [good_row], [bad_row] = store.list(key=good), store.list(key=bad)

    repaired = store.repaired(good_row, key="NEW-1")

    assert (repaired.key, repaired.type) == ("NEW-1", "upsert_product")
    with pytest.raises(QuarantineError, match="price_cents"):
        store.repaired(bad_row, key="NEW-2")
    with pytest.raises(QuarantineError, match="not a usable key"):
        store.repaired(good_row, key="has space")
    truncated = replace(good_row, body_size=good_row.body_size + 1)
    with pytest.raises(QuarantineError, match="were kept"):
        store.repaired(truncated)


def test_text_is_shown_with_control_and_invisible_characters_escaped():
    assert safe_text("a\x00b\x07c\u200bd\ud800e\nf") == "a\\x00b\\x07c\\u200bd\\ud800e\nf"
    assert safe_text("x" * 10, limit=4).startswith("xxxx\n… (6 more characters")


# -- refused reuses of a key -------------------------------------------------------------


def test_a_refused_reuse_is_reported_next_to_the_first_outcome(runner, engine):
    sku = new_product(runner, stock=5)
    first = order_for(sku, qty=1)
    reuse = PlaceOrder(key=first.key, customer_ref="someone-else", lines=[{"sku": sku, "qty": 2}])
    placed = run(runner, first)

    refusals = [run(runner, reuse), run(runner, reuse)]

    assert {(r.status, r.reason) for r in refusals} == {("rejected", "idempotency_key_reused")}
    status = lookup(engine, first.key)
    assert (status.status, status.result) == ("succeeded", placed.result)
    assert status.key_reuse is not None
    assert (status.key_reuse.refusals, status.key_reuse.fingerprint) == (2, reuse.fingerprint())
    data = status.as_dict()
    assert data["key_reuse"]["reason"] == "idempotency_key_reused"
    assert data["key_reuse"]["fingerprint"] == reuse.fingerprint()
    assert json.loads(json.dumps(data)) == data


def test_a_key_never_reused_looks_up_as_before(runner, engine):
    sku = new_product(runner, stock=5)
    order = order_for(sku)
    run(runner, order)
    run(runner, order)  # a duplicate with the same payload is not a reuse

    data = lookup(engine, order.key).as_dict()

    assert set(data) == {"key", "status", "result", "attempts"}
