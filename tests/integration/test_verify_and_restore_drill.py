"""`orderq db verify` names each broken invariant of a whole database; the restore
drill restores the newest backup into a scratch database, verifies it and records it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from orderq.settings import Settings
from producers.commands import CheckoutCopy
from tests.support.cli import orderq
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.library import new_member, new_work
from tests.support.private_database import PrivateDatabase, private_database
from tests.support.scratch import scratch_dir
from worker.adapters import integrity
from worker.adapters.advisory_locks import advisory_lock
from worker.adapters.backups import database_state
from worker.service.bootstrap import Services, bootstrap
from worker.service.maintenance.report import SKIPPED_LOCKED
from worker.service.maintenance.restore_drill import TASK, restore_drill


@dataclass
class Shop:
    database: PrivateDatabase
    services: Services
    sku: str
    placed: str  # key of a succeeded place-order
    refused: str  # key of a rejected place-order
    on_loan: str  # barcode of a copy on loan

    @property
    def engine(self) -> Engine:
        return self.services.engine

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database.url,
            "ORDERQ_ADMIN_DATABASE_URL": self.database.direct,
        }


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    """A small, healthy database of its own: orders, stock and a loan."""
    with private_database("verify") as database:
        services = bootstrap(Settings(database_url=database.url), lambda *_: None)
        try:
            runner = services.runner
            sku = new_product(runner, stock=5)
            placed = run(runner, order_for(sku, qty=2)).key
            refused = run(runner, order_for(sku, qty=99)).key
            member = new_member(runner)
            _, (barcode,) = new_work(runner, copies=1)
            checkout = CheckoutCopy(key=unique("co"), member=member, barcode=barcode)
            assert run(runner, checkout).status == "succeeded"
            yield Shop(database, services, sku, placed, refused, barcode)
        finally:
            services.close()


def test_a_healthy_database_passes_every_invariant(shop):
    result = integrity.verify(shop.engine)

    assert result.ok, result.violations
    assert set(result.violations) == set(integrity.CHECKS)
    done = orderq("db", "verify", shop.database.name, "--json", env=shop.env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


#: invariant -> (statements that break it, a fragment of what it reports)
PLANTED = {
    "stock_reconciled": (
        ["UPDATE stock_levels SET on_hand = on_hand + 1"],
        "stock (6, 2) != movements (5, 2)",
    ),
    "one_active_loan_per_copy": (
        [
            "DROP INDEX uq_loans_copy_id_active",
            "INSERT INTO loans (copy_id, member_id, idempotency_key, checked_out_at, due_at) "
            "SELECT copy_id, member_id, 'planted', now(), now() + interval '1 day' FROM loans",
        ],
        "2 active loans",
    ),
    "one_effect_per_key": (
        [
            "ALTER TABLE orders DROP CONSTRAINT uq_orders_idempotency_key",
            "INSERT INTO orders (idempotency_key, customer_ref, status, total_cents) "
            "SELECT idempotency_key, customer_ref, status, total_cents FROM orders",
        ],
        "order {placed}",
    ),
    "effects_only_for_successes": (
        [
            "INSERT INTO stock_movements (product_id, on_hand_delta, reserved_delta, reason, "
            "command_key) SELECT product_id, 0, 1, 'reserve', :refused FROM stock_levels",
        ],
        "{refused}",
    ),
    "successes_have_their_rows": (
        ["UPDATE orders SET total_cents = total_cents + 1"],
        "order {placed}: succeeded but a different order",
    ),
    "copy_status_agrees": (
        ["UPDATE copies SET status = 'available'"],
        "is available with 1 active loan",
    ),
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_each_invariant_names_the_row_that_breaks_it(shop, name):
    statements, expected = PLANTED[name]
    params = {"refused": shop.refused}
    with shop.engine.connect() as connection:
        for statement in statements:
            connection.execute(text(statement), params if ":" in statement else {})
        found = integrity.CHECKS[name](connection, integrity.Scope())
        connection.rollback()

    assert any(expected.format(placed=shop.placed, refused=shop.refused) in i for i in found), found
    assert integrity.verify(shop.engine).ok  # rolled back


def test_verify_exits_1_naming_the_broken_invariant(shop):
    with shop.engine.begin() as connection:
        connection.execute(text("UPDATE copies SET status = 'available'"))
    try:
        done = orderq("db", "verify", shop.database.name, env=shop.env())
    finally:
        with shop.engine.begin() as connection:
            connection.execute(text("UPDATE copies SET status = 'on_loan'"))

    assert done.returncode == 1
    assert "copy_status_agrees (1)" in " ".join(done.stderr.split())


def test_a_sequence_behind_its_table_is_caught(shop):
    """What a restore without setval would leave: the next insert collides."""
    sequence = "SELECT pg_get_serial_sequence('stock_movements', 'id')"
    with shop.engine.begin() as connection:
        name = connection.execute(text(sequence)).scalar_one()
        connection.execute(text("SELECT setval(:s, 1, false)"), {"s": name})
    try:
        found = integrity.verify(shop.engine).violations["sequences_ahead"]
    finally:
        with shop.engine.begin() as connection:
            connection.execute(
                text("SELECT setval(:s, (SELECT max(id) FROM stock_movements))"), {"s": name}
            )

    assert any("behind stock_movements.id" in item for item in found), found
    assert integrity.verify(shop.engine).ok


# -- the restore drill ---------------------------------------------------------------------


@pytest.fixture
def backups() -> Iterator[Path]:
    folder = scratch_dir("backups-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def drill_settings(shop: Shop, backups: Path) -> Settings:
    return Settings(
        database_url=shop.database.url,
        admin_database_url=shop.database.direct,
        backup_dir=backups,
        restore_drill_database=f"{shop.database.name}_drill",
    )


def latest_drill(engine: Engine) -> dict:
    with engine.connect() as connection:
        return dict(
            connection.execute(text("SELECT * FROM restore_drills ORDER BY id DESC LIMIT 1"))
            .mappings()
            .one()
        )


def test_the_drill_restores_the_newest_backup_verifies_it_and_records_it(shop, backups):
    settings = drill_settings(shop, backups)
    made = orderq("db", "backup", str(backups / "orderq-1.dump"), env=shop.env())
    assert made.returncode == 0, made.stderr

    report = restore_drill(settings, shop.engine).as_dict()

    assert report["status"] == "passed", report
    drill = latest_drill(shop.engine)
    assert drill["status"] == "passed" and drill["error"] is None
    assert drill["backup_file"].endswith("orderq-1.dump")
    assert drill["restored_rows"]["orders"] == 1 and drill["restored_rows"]["loans"] == 1
    assert drill["failed_invariants"] == {}
    assert not database_state(shop.database.sibling("drill").direct).exists  # cleaned up
    listed = orderq("db", "drills", "--json", env=shop.env())
    assert json.loads(listed.stdout)[0]["id"] == drill["id"]


def test_a_damaged_backup_fails_the_drill_and_says_why(shop, backups):
    settings = drill_settings(shop, backups)
    assert orderq("db", "backup", str(backups / "orderq-2.dump"), env=shop.env()).returncode == 0
    damaged = backups / "orderq-2.dump"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))

    report = restore_drill(settings, shop.engine).as_dict()

    assert report["status"] == "failed"
    assert "does not match orderq-2.dump.sha256" in latest_drill(shop.engine)["error"]


def test_the_drill_skips_while_another_holds_its_lock_or_without_a_backup_folder(shop, backups):
    settings = drill_settings(shop, backups)
    with advisory_lock(shop.engine, TASK) as held:
        assert held
        assert restore_drill(settings, shop.engine).skipped == SKIPPED_LOCKED
    unset = settings.model_copy(update={"backup_dir": None})
    assert "ORDERQ_BACKUP_DIR" in (restore_drill(unset, shop.engine).skipped or "")
