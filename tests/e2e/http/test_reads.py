"""The read side over real HTTP: search as people type it, listings paged by signed
cursors, refusals as 400 problem documents, and who may see which idempotency keys."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from producers.commands import AddCopy, AddWork, RegisterMember
from tests.support.cli import orderq
from tests.support.commands import new_product, run
from tests.support.http_server import Client
from tests.support.ids import unique
from tests.support.reads import soft_delete

pytestmark = pytest.mark.e2e

WAIT = 30
PHILOSOPHERS_STONE = "Harry Potter and the Philosopher's Stone"


def pages(client: Client, path: str, params: dict | None = None, most: int = 50) -> list[dict]:
    """Every result of a listing, following `next_cursor` page by page."""
    results: list[dict] = []
    params = dict(params or {})
    for _ in range(most):
        answer = client.http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"results", "next_cursor"}
        results += page["results"]
        if page["next_cursor"] is None:
            return results
        params["cursor"] = page["next_cursor"]
    raise AssertionError(f"{path} never ended")


def add_work(runner, title: str, authors: tuple[str, ...], copies: int = 0) -> str:
    code = unique("W")
    added = run(runner, AddWork(key=unique("w"), work=code, title=title, authors=authors))
    assert added.status == "succeeded"
    for _ in range(copies):
        copy = AddCopy(key=unique("c"), work=code, barcode=unique("B"))
        assert run(runner, copy).status == "succeeded"
    return code


@pytest.fixture
def catalogue(runner, engine) -> Iterator[dict[str, str]]:
    codes = {
        "stone": add_work(runner, PHILOSOPHERS_STONE, ("J. K. Rowling",), copies=2),
        "heights": add_work(runner, "Wuthering Heights", ("Emily Brontë",), copies=1),
        "porter": add_work(runner, "The Porter of Harrow", ("Harriet Poole",)),
    }
    yield codes
    soft_delete(engine, "works", "work_code", list(codes.values()))


@pytest.fixture
def operator(api_server) -> Iterator[Client]:
    """An operator key, made as an operator would: `orderq api-keys create --operator`."""
    name = unique("ops").lower()
    created = orderq("api-keys", "create", "--client", name, "--operator")
    assert created.returncode == 0, created.stderr
    client = Client(api_server.url, created.stdout.strip().splitlines()[-1], name)
    yield client
    client.close()


def test_harry_poter_finds_the_philosophers_stone_first(shop, catalogue):
    answer = shop.http.get("/v1/works", params={"q": "harry poter", "limit": 5})

    assert answer.status_code == 200, answer.text
    first = answer.json()["results"][0]
    assert first["title"] == PHILOSOPHERS_STONE
    assert first["authors"] == ["J. K. Rowling"]
    everything = pages(shop, "/v1/works", {"q": "harry poter", "limit": 5})
    (ours,) = [work for work in everything if work["work"] == catalogue["stone"]]
    assert (ours["available_copies"], ours["copies"]) == (2, 2)
    assert catalogue["porter"] not in [work["work"] for work in everything[:1]]


def test_bronte_finds_a_work_by_emily_bronte(shop, catalogue):
    answer = shop.http.get("/v1/works", params={"q": "bronte"})

    assert answer.status_code == 200, answer.text
    assert "Emily Brontë" in answer.json()["results"][0]["authors"]
    assert catalogue["heights"] in [w["work"] for w in pages(shop, "/v1/works", {"q": "bronte"})]


def test_a_phone_typed_internationally_finds_the_member_stored_nationally(shop, runner, engine):
    number = unique("M")
    command = RegisterMember(
        key=unique("r"), member=number, name="Jane Example", phone="020 7946 0000"
    )
    assert run(runner, command).status == "succeeded"
    try:
        found = pages(shop, "/v1/members", {"q": "+44 (0)20 7946-0000", "limit": 100})
    finally:
        soft_delete(engine, "members", "member_number", [number])

    (member,) = [m for m in found if m["member"] == number]
    assert member["phone"] == "020 7946 0000"
    assert member["matched_by"] == "phone"


def test_listings_page_through_cursors_each_row_once_newest_first(shop, runner):
    sku = new_product(runner, stock=10)
    customer = unique("cust/with slash")  # a reference holding a '/' travels percent-encoded
    numbers = []
    for _ in range(5):
        body = {"customer_ref": customer, "lines": [{"sku": sku, "qty": 1}]}
        placed = shop.post("/v1/orders", body, key=unique("o"), wait=WAIT)
        assert placed.status_code == 201, placed.text
        numbers.append(placed.json()["result"]["order_number"])
    path = f"/v1/customers/{quote(customer, safe='')}/orders"

    first = shop.http.get(path, params={"limit": 2}).json()
    seen = pages(shop, path, {"limit": 2})

    assert [order["order_number"] for order in seen] == numbers[::-1]
    assert [order["order_number"] for order in first["results"]] == numbers[::-1][:2]
    assert first["next_cursor"]
    movements = pages(shop, f"/v1/products/{sku}/movements", {"limit": 3})
    assert [m["reason"] for m in movements].count("reserve") == 5
    placed_paid = pages(shop, "/v1/orders", {"status": "placed", "limit": 100}, most=1000)
    assert set(numbers) <= {order["order_number"] for order in placed_paid}


def test_a_tampered_or_foreign_cursor_and_bad_parameters_are_400_problems(shop, runner):
    sku = new_product(runner, stock=4)
    for _ in range(2):
        shop.post(
            "/v1/orders",
            {"customer_ref": "tamper", "lines": [{"sku": sku, "qty": 1}]},
            key=unique("o"),
            wait=WAIT,
        )
    path = f"/v1/products/{sku}/movements"
    cursor = shop.http.get(path, params={"limit": 1}).json()["next_cursor"]
    payload, signature = cursor.split(".")
    tampered = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{signature}"
    other_sku = new_product(runner, stock=1)

    answers = {
        "tampered": shop.http.get(path, params={"limit": 1, "cursor": tampered}),
        "garbage": shop.http.get(path, params={"cursor": "not-a-cursor"}),
        "other filters": shop.http.get(
            f"/v1/products/{other_sku}/movements", params={"cursor": cursor}
        ),
        "other listing": shop.http.get("/v1/works", params={"q": "x", "cursor": cursor}),
        "limit 0": shop.http.get(path, params={"limit": 0}),
        "limit 101": shop.http.get(path, params={"limit": 101}),
        "limit abc": shop.http.get(path, params={"limit": "abc"}),
        "no query": shop.http.get("/v1/works"),
        "NUL": shop.http.get("/v1/members", params={"q": "a\x00b"}),
        "status": shop.http.get("/v1/orders", params={"status": "lost"}),
        "since": shop.http.get(
            "/v1/reports/orders-over-total",
            params={"status": "paid", "min_total_cents": 1, "since": "yesterday"},
        ),
        "window": shop.http.get(
            "/v1/reports/orders-over-total",
            params={
                "status": "paid",
                "min_total_cents": 1,
                "since": "2026-02-01",
                "until": "2026-01-01",
            },
        ),
    }

    for name, answer in answers.items():
        assert answer.status_code == 400, (name, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", name
        problem = answer.json()
        expected = (
            "invalid_cursor"
            if name in {"tampered", "garbage", "other filters", "other listing"}
            else "invalid_query"
        )
        assert problem["reason"] == expected, (name, problem)
        assert problem["status"] == 400 and problem["detail"]
    assert "altered" in answers["tampered"].json()["detail"]
    assert "other filters" in answers["other filters"].json()["detail"]
    assert shop.http.get(path, params={"limit": 1, "cursor": cursor}).status_code == 200


def test_reads_need_a_valid_key(api_server, shop):
    anonymous = httpx.get(f"{api_server.url}/v1/works", params={"q": "harry"})
    wrong = httpx.get(
        f"{api_server.url}/v1/works",
        params={"q": "harry"},
        headers={"Authorization": "Bearer oq_" + "x" * 43},
    )

    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["reason"] == "unauthorized"


def test_a_client_sees_its_own_keys_in_listings_never_another_clients(new_client, operator, runner):
    sku = new_product(runner, stock=10)
    shop, desk = new_client(), new_client()
    key = unique("same-key")  # both clients use the same key string
    for client in (shop, desk):
        body = {"customer_ref": client.name, "lines": [{"sku": sku, "qty": 1}]}
        assert client.post("/v1/orders", body, key=key, wait=WAIT).status_code == 201

    seen = {
        client.name: pages(client, f"/v1/products/{sku}/movements", {"limit": 1})
        for client in (shop, desk, operator)
    }

    def keys(name: str) -> list[str | None]:
        return sorted((m["command_key"] for m in seen[name] if m["reason"] == "reserve"), key=str)

    assert keys(shop.name) == sorted([key, None], key=str)
    assert keys(desk.name) == sorted([key, None], key=str)
    assert keys(operator.name) == sorted([f"@{shop.name}/{key}", f"@{desk.name}/{key}"])
    # the order's own document never carries the key either
    shop_orders = pages(shop, f"/v1/customers/{desk.name}/orders")
    (desk_order,) = shop_orders
    document = shop.get(f"/v1/orders/{desk_order['order_number']}").json()
    assert "idempotency_key" not in document and key not in str(document)
    assert key not in str(shop_orders)


def test_the_ledger_is_for_operator_keys(shop, operator):
    key = unique("ledger")
    assert (
        shop.post(
            "/v1/commands/upsert_product",
            {"sku": unique("L"), "name": "Lamp", "price_cents": 100},
            key=key,
            wait=WAIT,
        ).status_code
        == 200
    )

    refused = shop.http.get("/v1/ledger", params={"status": "succeeded"})
    entries = pages(operator, "/v1/ledger", {"status": "succeeded", "limit": 100}, most=1000)

    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "forbidden"
    (entry,) = [e for e in entries if e["key"] == f"@{shop.name}/{key}"]
    assert entry["command_type"] == "upsert_product"
    assert entry["status"] == "succeeded"


def test_the_hot_report_over_http(shop, runner):
    sku = new_product(runner, stock=10, price_cents=2500)
    customer = unique("big")
    for qty in (1, 4):
        body = {"customer_ref": customer, "lines": [{"sku": sku, "qty": qty}]}
        assert shop.post("/v1/orders", body, key=unique("o"), wait=WAIT).status_code == 201

    rows = pages(
        shop,
        "/v1/reports/orders-over-total",
        {"status": "placed", "min_total_cents": 5000, "limit": 100},
        most=1000,
    )

    ours = [row for row in rows if row["customer_ref"] == customer]
    assert [(row["units"], row["items_total_cents"]) for row in ours] == [(4, 10000)]
