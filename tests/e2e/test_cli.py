"""The `orderq` command as a new user types it from the README, against a real worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ids import unique
from tests.support.outcomes import stock_of

pytestmark = pytest.mark.e2e

ORDERQ = str(Path(sys.executable).with_name("orderq"))


def orderq(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORDERQ, *args], capture_output=True, text=True, input=stdin, timeout=60, check=False
    )


def ok(*args: str) -> str:
    result = orderq(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_publish_and_status_round_trip(worker, engine):
    sku, up, restock, order = unique("MUG"), unique("up"), unique("rs"), unique("web")

    ok("publish", "upsert-product", "--key", up, "--sku", sku, "--name", "Mug", "--price", "12.50")
    ok("publish", "restock", "--key", restock, "--sku", sku, "--qty", "5")
    ok("status", restock, "--wait", "20")
    published = ok(
        "publish", "place-order", "--key", order, "--customer", "alice", "--line", f"{sku}:2"
    )
    status = json.loads(ok("status", order, "--wait", "20", "--json"))

    assert f"key={order}" in published
    assert status["key"] == order
    assert status["status"] == "succeeded"
    assert status["result"]["order_number"].startswith("ORD-")
    assert status["result"]["total_cents"] == 2500
    assert stock_of(engine, sku) == (5, 2)


def test_rejection_is_reported_with_its_reason(worker):
    order = unique("web")
    ok("publish", "place-order", "--key", order, "--customer", "bob", "--line", "NO-SUCH-SKU:1")

    status = json.loads(ok("status", order, "--wait", "20", "--json"))

    assert (status["status"], status["reason"]) == ("rejected", "unknown_sku")
    assert "NO-SUCH-SKU" in status["message"]


def test_unknown_key_and_timeout(migrated_database):
    key = unique("never-published")
    assert json.loads(ok("status", key, "--json"))["status"] == "unknown"

    waited = orderq("status", key, "--wait", "0.5", "--json")

    assert waited.returncode == 1
    assert json.loads(waited.stdout)["status"] == "unknown"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["restock", "--sku", "MUG", "--qty", "0"], "--qty: Input should be greater than 0"),
        (["restock", "--sku", "MUG", "--qty", "-4"], "--qty: Input should be greater than 0"),
        (
            ["restock", "--sku", "bad sku", "--qty", "1"],
            "--sku: 'BAD SKU' is not a SKU (like MUG-1",
        ),
        (["place-order", "--customer", "c", "--line", "MUG"], "must look like SKU:QTY"),
        (["place-order", "--customer", "c", "--line", "MUG:x"], "is not a whole number"),
        (["place-order", "--customer", "c", "--line", "MUG:0"], "greater than 0"),
        (["upsert-product", "--sku", "A", "--name", "n", "--price", "1.234"], "two decimal places"),
        (["ship-order", "--order", "42"], "is not an order number"),
    ],
)
def test_bad_values_fail_before_anything_is_published(migrated_database, args, message):
    key = unique("bad")

    result = orderq("publish", *args[:1], "--key", key, *args[1:])

    assert result.returncode != 0
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error:" in line]) == 1
    assert json.loads(ok("status", key, "--json"))["status"] == "unknown"


def test_missing_flag_is_a_usage_error(migrated_database):
    result = orderq("publish", "restock", "--key", unique("k"), "--sku", "MUG")

    assert result.returncode == 2
    assert "--qty" in result.stderr


def test_publish_file_reports_bad_lines_and_publishes_the_rest(worker, tmp_path, engine):
    sku, good_keys = unique("PEN"), [unique("f") for _ in range(3)]
    lines = [
        json.dumps(
            {
                "type": "upsert_product",
                "key": good_keys[0],
                "sku": sku,
                "name": "Pen",
                "price_cents": 150,
            }
        ),
        "{not json",
        json.dumps({"type": "restock_product", "key": good_keys[1], "sku": sku, "qty": 9}),
        json.dumps({"type": "place_order", "key": unique("f"), "customer_ref": "c", "lines": []}),
        "",
        json.dumps({"type": "teleport", "key": unique("f")}),
        json.dumps({"type": "restock_product", "key": good_keys[2], "sku": sku, "qty": 1}),
    ]
    path = tmp_path / "commands.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = orderq("publish-file", str(path))

    assert result.returncode == 1
    assert "line 2: invalid JSON" in result.stderr
    assert "line 4: lines:" in result.stderr
    assert "line 6: type: unknown command type 'teleport'" in result.stderr
    assert "published 3 command(s); 3 line(s) refused" in result.stdout
    statuses = [json.loads(ok("status", key, "--wait", "20", "--json")) for key in good_keys]
    assert [s["status"] for s in statuses] == ["succeeded"] * 3
    assert stock_of(engine, sku) == (10, 0)


def test_publish_file_from_stdin(worker):
    key = unique("stdin")
    line = json.dumps({"type": "restock_product", "key": key, "sku": "NO-SUCH", "qty": 1})

    result = orderq("publish-file", "-", stdin=line + "\n")

    assert result.returncode == 0, result.stderr
    assert json.loads(ok("status", key, "--wait", "20", "--json"))["reason"] == "unknown_sku"


def test_publish_file_missing_file(migrated_database, tmp_path):
    result = orderq("publish-file", str(tmp_path / "nope.jsonl"))

    assert result.returncode == 2
    assert "no such file" in result.stderr
