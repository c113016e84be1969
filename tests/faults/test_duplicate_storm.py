"""Every key published three times, by three producer processes at once."""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.support.commands import new_product
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.outcomes import await_outcomes, scalar
from tests.support.storm import publish_all

pytestmark = pytest.mark.faults


def test_duplicate_storm_applies_every_key_once(rig, runner, engine):
    from producers.commands import PlaceOrder

    skus = [new_product(runner, stock=15) for _ in range(3)]
    rig.worker(name="storm-a")
    rig.worker(name="storm-b")
    rng = random.Random(7)
    commands = [
        PlaceOrder(
            key=unique("STORM"),
            customer_ref="storm",
            lines=[{"sku": sku, "qty": rng.randint(1, 3)} for sku in rng.sample(skus, 2)],
        )
        for _ in range(60)
    ]
    messages = [command.message() for command in commands]

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=spawn) as producers:
        sent = list(
            producers.map(
                publish_all,
                [rig.queue] * 3,
                [rig.broker_url] * 3,
                [messages] * 3,
                [1, 2, 3],
            )
        )
    keys = [command.key for command in commands]
    statuses = await_outcomes(engine, keys, timeout=90)

    assert sent == [60, 60, 60]
    assert set(statuses.values()) <= {"succeeded", "rejected"}
    succeeded = sum(status == "succeeded" for status in statuses.values())
    assert 0 < succeeded < 60  # 45 units for ~120 requested: some sell out
    orders = "SELECT count(*) FROM orders WHERE idempotency_key = ANY(:keys)"
    assert scalar(engine, orders, keys=keys) == succeeded
    assert_invariants(engine, Scope(keys, skus))
