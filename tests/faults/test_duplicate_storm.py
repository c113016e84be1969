"""Every key published three times, by three producer processes at once: orders racing
for scarce stock, and checkouts, returns and reservations racing for four copies."""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor

import pytest

from producers.commands import (
    CheckoutCopy,
    Command,
    PlaceOrder,
    PlaceReservation,
    ReturnCopy,
)
from tests.support.commands import new_product
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.library import new_member, new_work
from tests.support.outcomes import await_outcomes, scalar
from tests.support.storm import publish_all

pytestmark = pytest.mark.faults


def library_storm(runner, rng: random.Random) -> tuple[list[Command], list[str]]:
    """Six members (two loans each) after two works of two copies: 24 checkouts, 8
    returns and 6 reservations; returns the commands and the barcodes."""
    members = [new_member(runner, loan_limit=2) for _ in range(6)]
    works = [new_work(runner, copies=2) for _ in range(2)]
    barcodes = [barcode for _, copies in works for barcode in copies]
    commands: list[Command] = [
        CheckoutCopy(key=unique("STORMCO"), member=rng.choice(members), barcode=barcode)
        for barcode in barcodes * 6
    ]
    commands += [ReturnCopy(key=unique("STORMRET"), barcode=barcode) for barcode in barcodes * 2]
    commands += [
        PlaceReservation(key=unique("STORMRSV"), member=member, work=rng.choice(works)[0])
        for member in members
    ]
    return commands, barcodes


def test_duplicate_storm_applies_every_key_once(rig, runner, engine):
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
    loan_commands, barcodes = library_storm(runner, rng)
    messages = [command.message() for command in commands + loan_commands]

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
    checkouts = [command.key for command in loan_commands if command.type == "checkout_copy"]
    all_keys = keys + [command.key for command in loan_commands]
    statuses = await_outcomes(engine, all_keys, timeout=90)

    assert sent == [len(messages)] * 3
    assert set(statuses.values()) <= {"succeeded", "rejected"}
    succeeded = sum(statuses[key] == "succeeded" for key in keys)
    assert 0 < succeeded < 60  # 45 units for ~120 requested: some sell out
    orders = "SELECT count(*) FROM orders WHERE idempotency_key = ANY(:keys)"
    assert scalar(engine, orders, keys=keys) == succeeded
    lent = sum(statuses[key] == "succeeded" for key in checkouts)
    assert lent > 0
    loans = "SELECT count(*) FROM loans WHERE idempotency_key = ANY(:keys)"
    assert scalar(engine, loans, keys=checkouts) == lent
    assert_invariants(engine, Scope(all_keys, skus, barcodes))
