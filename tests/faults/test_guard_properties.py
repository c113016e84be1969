"""A property-based run through a real broker and a real worker: batches of generated
messages (tests/support/envelopes.py) — valid and invalid commands, in intact or broken
bodies, with right or wrong headers, content types and encodings — pushed raw onto the
Redis list, then the invariants:

- the worker never died: same main process, still running, and a normal command
  published after each batch is decided;
- every key a message plainly carries has exactly one outcome; every other message
  is in the quarantine; nothing was delivered more often than the bound;
- stock reconciles with its movements, nothing applied twice, no effect without a
  success (tests/support/invariants.py).

Bounded for CI: 6 batches of 12-30 messages against one worker (about 20 s). The bulk
of the generated cases — hundreds per run — goes through the guard in-process in
tests/unit/test_envelope_guard.py, with the same strategies.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from producers.commands import UpsertProduct
from producers.outcomes import lookup
from tests.support.commands import new_product
from tests.support.envelopes import Sent, messages
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.invariants import Scope, check_invariants, outcome_of_keys
from tests.support.outcomes import ledger_rows
from tests.support.raw_messages import (
    clean_redis_queue,
    delivery_count,
    push_redis,
    quarantined,
)
from tests.support.rig import FaultRig

pytestmark = pytest.mark.faults

SKUS_PER_RUN = 3
MAX_DELIVERIES = 5  # the worker's max_attempts: the database-side bound on a key


class Run:
    """One worker on a private Redis queue and the products the batches order."""

    def __init__(self, runner) -> None:
        self.rig = FaultRig()
        self.worker = self.rig.worker(concurrency=2, name="properties")
        self.main_pid = self.worker.pid
        self.publisher = self.rig.publisher()
        self.skus = [new_product(runner, stock=60) for _ in range(SKUS_PER_RUN)]
        self.keys: list[str] = []

    def push(self, sent: Sent) -> None:
        """The message as kombu keeps it on the list, whatever its parts are."""
        item = {
            "body": base64.b64encode(sent.body).decode(),
            "content-encoding": sent.content_encoding,
            "content-type": sent.content_type,
            "headers": sent.headers,
            "properties": {
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": self.rig.queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        push_redis(self.rig.broker_url, self.rig.queue, item)


@pytest.fixture(scope="module")
def run(migrated_database: str, settings, engine) -> Iterator[Run]:
    from sqlalchemy.orm import sessionmaker

    from worker.adapters.orm import start_mappers
    from worker.service.runner import CommandRunner

    start_mappers()
    runner = CommandRunner(settings, engine, sessionmaker(bind=engine, expire_on_commit=False))
    stage = Run(runner)
    yield stage
    stage.rig.close()
    clean_redis_queue(stage.rig.broker_url, stage.rig.queue)  # kombu's bindings too


@settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_batch_of_generated_messages_breaks_an_invariant(run: Run, engine: Engine, data):
    batch: list[Sent] = data.draw(st.lists(messages(run.skus), min_size=12, max_size=30))
    for sent in batch:
        run.push(sent)
    after = UpsertProduct(key=unique("AFTER"), sku=unique("SKU"), name="After", price_cents=1)
    run.publisher.publish(after)

    keys = [sent.key for sent in batch if sent.key is not None]
    run.keys.extend(keys)
    eventually(
        lambda: _open(engine, [*keys, after.key]),
        until=lambda still_open: not still_open,
        what="an outcome for every key the batch plainly carried",
        timeout=60,
    )
    assert run.worker.is_running() and run.worker.pid == run.main_pid
    assert lookup(engine, after.key).status == "succeeded"
    for sent in batch:
        rows = quarantined(engine, sent.marker)
        assert len(rows) <= 1 and all(row["deliveries"] == 1 for row in rows), rows
        if sent.key is None:
            assert len(rows) == 1, f"a message without a key is neither run nor kept: {sent}"
            continue
        assert ledger_rows(engine, sent.key) == 1
        assert delivery_count(engine, sent.key) <= MAX_DELIVERIES
        if rows:
            assert rows[0]["idempotency_key"] == sent.key, (rows, sent)
    report = check_invariants(engine, Scope(keys=run.keys, skus=run.skus))
    assert report.ok, report.explain()


def _open(engine: Engine, keys: list[str]) -> list[str]:
    with engine.connect() as connection:
        statuses = outcome_of_keys(connection, keys)
    return [key for key, status in statuses.items() if status not in ("succeeded", "rejected")]
