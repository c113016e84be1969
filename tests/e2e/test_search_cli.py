"""`orderq search` and `orderq list` as typed: JSON shape, pages, refusals in one line."""

from __future__ import annotations

import json

import pytest

from producers.commands import AddCopy, AddWork
from tests.support.cli import orderq
from tests.support.commands import new_product, order_for, run
from tests.support.ids import unique
from tests.support.outcomes import await_outcome
from tests.support.reads import soft_delete


@pytest.fixture
def potter(runner, engine, migrated_database):
    code = unique("W")
    title = "Harry Potter and the Philosopher's Stone"
    run(runner, AddWork(key=unique("w"), work=code, title=title, authors=("J. K. Rowling",)))
    run(runner, AddCopy(key=unique("c"), work=code, barcode=unique("B")))
    yield code
    soft_delete(engine, "works", "work_code", [code])


def test_search_works_as_json(potter):
    done = orderq("search", "works", "harry poter", "--limit", "5", "--json")

    assert done.returncode == 0, done.stderr
    page = json.loads(done.stdout)
    assert set(page) == {"results", "next_cursor"}
    first = page["results"][0]
    assert first["title"] == "Harry Potter and the Philosopher's Stone"
    assert {"work", "title", "authors", "available_copies"} <= first.keys()
    assert isinstance(first["available_copies"], int)
    found = [r for r in page["results"] if r["work"] == potter]
    for _ in range(10):  # earlier runs' copies of the same title may come first
        if found or page["next_cursor"] is None:
            break
        more = orderq(
            "search",
            "works",
            "harry poter",
            "--limit",
            "5",
            "--json",
            "--cursor",
            page["next_cursor"],
        )
        page = json.loads(more.stdout)
        found = [r for r in page["results"] if r["work"] == potter]
    assert found and found[0]["available_copies"] == 1


def test_list_pages_with_the_printed_cursor_and_refuses_a_tampered_one(runner):
    sku = new_product(runner, stock=5)
    customer = unique("cli-cust")
    for _ in range(3):
        command = order_for(sku)
        run(runner, command.model_copy(update={"customer_ref": customer}))

    first = json.loads(orderq("list", "customer-orders", customer, "--limit", "2", "--json").stdout)
    cursor = first["next_cursor"]
    second = orderq(
        "list", "customer-orders", customer, "--limit", "2", "--cursor", cursor, "--json"
    )
    tampered = orderq("list", "customer-orders", customer, "--cursor", cursor[:-1] + "x")
    foreign = orderq("search", "products", "MUG", "--cursor", cursor)

    assert len(first["results"]) == 2
    assert len(json.loads(second.stdout)["results"]) == 1
    for refused in (tampered, foreign):
        assert refused.returncode == 2
        assert refused.stdout == ""
        lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "cursor" in lines[0]


def test_orders_list_pages_with_its_signed_cursor_and_refuses_a_tampered_one(runner):
    sku = new_product(runner, stock=5)
    for _ in range(3):
        run(runner, order_for(sku))

    first = orderq("orders", "list", "--status", "placed", "--limit", "2", "--json")
    page = json.loads(first.stdout)
    cursor = page["next_cursor"]
    second = orderq(
        "orders", "list", "--status", "placed", "--limit", "2", "--cursor", cursor, "--json"
    )
    table = orderq("orders", "list", "--status", "placed", "--limit", "1")
    printed = table.stdout.rsplit("--cursor '", 1)[1].split("'", 1)[0]
    tampered = orderq("orders", "list", "--status", "placed", "--cursor", cursor[:-1] + "x")
    other_status = orderq("orders", "list", "--status", "paid", "--cursor", cursor)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    numbers = [o["order_number"] for o in page["orders"]]
    following = [o["order_number"] for o in json.loads(second.stdout)["orders"]]
    assert len(numbers) == 2 and following and not set(numbers) & set(following)
    assert numbers[0] > following[0]  # newest first, the second page after the first
    assert orderq("orders", "list", "--status", "placed", "--cursor", printed).returncode == 0
    for refused in (tampered, other_status):
        assert refused.returncode == 2 and refused.stdout == ""
        (line,) = [ln for ln in refused.stderr.splitlines() if ln.startswith("error:")]
        assert "is not a cursor printed by orderq orders list" in line


@pytest.mark.parametrize(
    "arguments",
    [
        ["search", "works", "x", "--limit", "0"],
        ["search", "members", "   "],
        ["list", "ledger", "--status", "processing"],
        ["list", "big-orders", "--status", "paid", "--min-total-cents", "1", "--since", "soon"],
    ],
    ids=["limit", "empty query", "ledger status", "bad date"],
)
def test_bad_input_is_one_line_and_exit_2(arguments, migrated_database):
    done = orderq(*arguments)

    assert done.returncode == 2, done.stdout + done.stderr
    assert sum(line.startswith("error:") for line in done.stderr.splitlines()) == 1


def test_contact_flags_of_publish_reach_the_search(worker, engine):
    """`publish register-member --email --phone` and `publish place-order
    --customer-name/-email/-phone`: the optional contact fields, found by search."""
    tag = unique("x").lower().replace("-", "")
    member, customer = unique("M"), unique("cust").lower()
    sku = unique("SKU")
    published = [
        orderq(
            "publish",
            "register-member",
            "--key",
            unique("r"),
            "--member",
            member,
            "--name",
            "Ada Lovelace",
            "--email",
            f"ada.{tag}@example.org",
            "--phone",
            "+44 (0)20 7946-0001",
        ),
        orderq(
            "publish",
            "upsert-product",
            "--key",
            unique("p"),
            "--sku",
            sku,
            "--name",
            "Mug",
            "--price",
            "1",
        ),
        orderq("publish", "restock", "--key", unique("s"), "--sku", sku, "--qty", "1"),
    ]
    order_key = unique("o")
    published.append(
        orderq(
            "publish",
            "place-order",
            "--key",
            order_key,
            "--customer",
            customer,
            "--line",
            f"{sku}:1",
            "--customer-name",
            f"Zoë Quartz{tag}",
            "--customer-email",
            f"zoe.{tag}@shop.test",
            "--customer-phone",
            "020 7946 0002",
        )
    )
    assert [p.returncode for p in published] == [0, 0, 0, 0], [p.stderr for p in published]
    assert await_outcome(engine, order_key).status == "succeeded"

    members = orderq("search", "members", f"ada.{tag}@", "--json")
    customers = orderq("search", "customers", f"zoe quartz{tag}", "--json")

    try:
        (found,) = json.loads(members.stdout)["results"]
        assert (found["member"], found["phone"]) == (member, "+44 (0)20 7946-0001")
        mine = [c for c in json.loads(customers.stdout)["results"] if c["customer"] == customer]
        assert [(c["email"], c["phone"]) for c in mine] == [
            (f"zoe.{tag}@shop.test", "020 7946 0002")
        ]
    finally:
        soft_delete(engine, "members", "member_number", [member])
