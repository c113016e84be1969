"""The figures a scrape reads from PostgreSQL: queued commands and their oldest age, dead
letters, quarantine — right, and cheap (served by partial indexes).

Each test writes its rows in one transaction, reads the figures inside it and rolls it
back: the shared test database keeps nothing, and rows of other tests cannot skew the
before/after difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from orderq.observability import sources
from producers.command_log import CommandLog
from producers.database import transaction
from tests.support.ids import unique
from tests.support.plans import index_names
from worker.adapters.quarantine import QuarantineLog, QuarantineRecord

FINGERPRINT = "f" * 64


@pytest.fixture
def connection(engine) -> Iterator[psycopg.Connection[Any]]:
    """A connection in a transaction that is rolled back at the end."""

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction(engine) as connection:
        yield connection
        raise Rollback


def queue(log: CommandLog, age_seconds: float = 0) -> str:
    key = unique("queued")
    log.record_queued(key, "place_order", FINGERPRINT, {"type": "place_order", "key": key})
    if age_seconds:
        log.connection.execute(
            "UPDATE command_deliveries SET created_at = now() - make_interval(secs => %s) "
            "WHERE idempotency_key = %s",
            (age_seconds, key),
        )
    return key


def decide(log: CommandLog, key: str) -> None:
    assert log.claim(key, "place_order", FINGERPRINT) is None
    log.record_outcome(key, "succeeded", {"order_number": "ORD-1"}, None, 1)


def test_queued_commands_and_the_oldest_one(connection):
    log = CommandLog(connection)
    before = log.backlog()

    queue(log)
    queue(log, age_seconds=7200)
    after = log.backlog()

    assert after.queued - before.queued == 2
    assert after.oldest_queued_seconds >= 7200


def test_a_command_taken_by_a_worker_or_decided_is_no_longer_queued(connection):
    log = CommandLog(connection)
    before = log.backlog()
    taken, decided = queue(log, age_seconds=3600), queue(log, age_seconds=3600)

    log.count_attempt(taken, "place_order", FINGERPRINT, {"key": taken})
    decide(log, decided)  # e.g. `rejected: invalid_command`, stored without an attempt

    assert log.backlog().queued == before.queued


def test_dead_letters_are_failed_commands_without_an_outcome(connection):
    log = CommandLog(connection)
    before = log.backlog()
    dead, revived, discarded = queue(log), queue(log), queue(log)
    for key in (dead, revived, discarded):
        log.count_attempt(key, "place_order", FINGERPRINT, {"key": key})
        log.mark_failed(key, "unknown error: boom", {"key": key}, FINGERPRINT)
    decide(log, revived)  # a concurrent copy succeeded after all
    log.discard(discarded, "duplicate of web-7", "ops")

    assert log.backlog().dead_letters - before.dead_letters == 1


def test_the_attempt_says_how_long_ago_the_command_was_accepted(connection):
    log = CommandLog(connection)
    key = queue(log, age_seconds=90)

    attempt = log.count_attempt(key, "place_order", FINGERPRINT, {"key": key})

    assert 90 <= attempt.accepted_seconds_ago < 120
    first_seen = unique("untracked")
    assert log.count_attempt(first_seen, "place_order", FINGERPRINT, {}).accepted_seconds_ago < 5


def test_quarantine_counts_the_messages_waiting_for_an_operator(connection, monkeypatch):
    log = QuarantineLog(connection)
    before = sources.quarantined_messages(connection)
    kept = [log.record(_refused(unique("probe"))) for _ in range(2)]
    assert sources.quarantined_messages(connection) == before + 2

    log.discard(kept[0].id, "looked at it", "test")
    assert sources.quarantined_messages(connection) == before + 1
    monkeypatch.setattr(sources, "QUARANTINE_COUNT_CAP", 1)
    assert sources.quarantined_messages(connection) == 1


def _refused(tag: str) -> QuarantineRecord:
    return QuarantineRecord(
        fingerprint=hashlib.sha256(tag.encode()).hexdigest(),
        problem="content_type",
        reason=f"{tag}: not JSON",
        broker="redis",
        queue="test",
        headers={},
        properties={},
        body="",
        body_size=0,
    )


def test_the_backlog_reads_the_partial_indexes_not_the_table(engine):
    from producers.command_log import _BACKLOG

    with engine.connect() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        used = index_names(connection, _BACKLOG)
    assert "ix_command_deliveries_queued_created_at" in used
    assert "ix_command_deliveries_dead_letters" in used
