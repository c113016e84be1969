"""The `orderq` command as a new user types it from the README, against a real worker."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.commands import new_product
from tests.support.ids import unique
from tests.support.outcomes import await_outcomes, scalar, stock_of

pytestmark = pytest.mark.e2e

ORDERQ = str(Path(sys.executable).with_name("orderq"))


def orderq(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess[str]:
    if isinstance(stdin, str):
        stdin = stdin.encode()
    result = subprocess.run(
        [ORDERQ, *args], capture_output=True, input=stdin, timeout=60, check=False
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
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
            "--sku 'BAD SKU' is not a SKU (like MUG-1",
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
    assert result.stderr == ("error: missing option '--qty'; see orderq publish restock --help\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["restock", "--sku", "MUG", "--qty", "abc"], "error: --qty 'abc' is not a whole number"),
        (["restock", "--sku", "MUG", "--qty", "1", "--colour", "red"], "error: no such option"),
        (
            ["upsert-product", "--sku", "A", "--name", "n", "--price", "NaN"],
            "error: --price 'NaN' is not a number (expected e.g. 12.50)",
        ),
        (
            ["upsert-product", "--sku", "A", "--name", "n", "--price", "100000000.01"],
            "error: --price '100000000.01' is over the limit: at most 100,000,000.00",
        ),
    ],
)
def test_command_line_mistakes_are_one_line_with_a_pointer_to_help(args, line):
    result = orderq("publish", *args[:1], "--key", unique("k"), *args[1:])

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(line)
    assert result.stderr.rstrip().endswith(f"; see orderq publish {args[0]} --help")
    assert result.stdout == ""


def test_version_is_the_installed_distribution():
    from importlib.metadata import version

    result = orderq("--version")

    assert (result.returncode, result.stdout) == (0, f"orderq {version('orderq')}\n")


def test_publish_file_reports_bad_lines_and_publishes_the_rest(worker, runner, tmp_path, engine):
    # the product exists first: the workers run a file's lines concurrently, in any order
    sku, good_keys = new_product(runner, stock=0), [unique("f") for _ in range(3)]
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


def test_publish_file_reads_a_utf16_file_with_a_byte_order_mark(worker, runner, tmp_path, engine):
    sku = new_product(runner, stock=0)
    keys = [unique("enc") for _ in range(3)]
    lines = [  # in any order they give the same result (workers run them concurrently)
        {"type": "upsert_product", "key": keys[0], "sku": sku, "name": "Thé", "price_cents": 90},
        {"type": "restock_product", "key": keys[1], "sku": sku, "qty": 4},
        {"type": "restock_product", "key": keys[2], "sku": sku, "qty": 1},
    ]
    text = "".join(json.dumps(line, ensure_ascii=False) + "\r\n" for line in lines)
    path = tmp_path / "utf16.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))  # as Windows tools write

    result = orderq("publish-file", str(path))

    assert result.returncode == 0, result.stderr
    assert f"reading {path} as UTF-16 (it starts with a byte-order mark)" in result.stderr
    assert result.stdout == "published 3 command(s); 0 line(s) refused\n"
    assert set(await_outcomes(engine, keys).values()) == {"succeeded"}
    assert stock_of(engine, sku) == (5, 0)
    assert scalar(engine, "SELECT name FROM products WHERE sku = :sku", sku=sku) == "Thé"


def test_a_latin1_line_is_refused_by_number_from_a_file_and_from_stdin_alike(
    migrated_database, tmp_path, engine
):
    first, third = unique("enc"), unique("enc")
    data = b"".join(
        [
            json.dumps({"type": "restock_product", "key": first, "sku": "X-1", "qty": 1}).encode(),
            b"\n",
            '{"type": "restock_product", "key": "caf\u00e9", "sku": "X-1", "qty": 1}'.encode(
                "latin-1"
            ),
            b"\n",
            json.dumps({"type": "restock_product", "key": third, "sku": "X-1", "qty": 1}).encode(),
            b"\n",
        ]
    )
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(data)

    from_file = orderq("publish-file", str(path))
    from_stdin = orderq("publish-file", "-", stdin=data)

    column = data.split(b"\n")[1].index(b"\xe9") + 1
    refusal = (
        f"line 2: not UTF-8: byte 0xE9 at column {column} (invalid continuation byte); "
        "save the file as UTF-8"
    )
    summary = "published 2 command(s); 1 line(s) refused (line 2)\n"
    for result in (from_file, from_stdin):
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert refusal in result.stderr
        assert result.stdout == summary
    statuses = {json.loads(ok("status", key, "--json"))["status"] for key in (first, third)}
    assert statuses <= {"queued", "running", "succeeded", "rejected"}  # published, both


def test_not_found_exits_1_everywhere_a_bad_value_exits_2(migrated_database):
    """The rule in docs/cli.md: 1 when the servers say no, 2 when the command line is wrong."""
    missing = unique("NO-SUCH-KEY")
    not_found = {
        "orders show": orderq("orders", "show", "ORD-999999999"),
        "dead-letters show": orderq("dead-letters", "show", missing),
        "dead-letters replay": orderq("dead-letters", "replay", missing),
        "dead-letters discard": orderq("dead-letters", "discard", missing, "--reason", "x"),
    }
    usage = {
        "orders show": orderq("orders", "show", "42"),
        "maintenance run": orderq("maintenance", "run", "defragment"),
        "publish-file": orderq("publish-file", "/nonexistent/commands.jsonl"),
        "publish-file folder": orderq("publish-file", "/"),
    }
    unknown_status = orderq("status", missing, "--json")

    assert {name: r.returncode for name, r in not_found.items()} == dict.fromkeys(not_found, 1)
    assert "no order ORD-999999999" in not_found["orders show"].stderr
    for name in ("dead-letters show", "dead-letters replay", "dead-letters discard"):
        assert f"{missing}: no such key" in not_found[name].stderr
    assert {name: r.returncode for name, r in usage.items()} == dict.fromkeys(usage, 2)
    # "unknown" is an answer, not an error: status exits 0 (1 only when --wait runs out)
    assert unknown_status.returncode == 0
    assert json.loads(unknown_status.stdout)["status"] == "unknown"
