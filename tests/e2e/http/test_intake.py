"""The HTTP contract over real HTTP: `orderq serve` -> PostgreSQL -> broker -> worker."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.commands import new_product
from tests.support.concurrency import at_once
from tests.support.eventually import eventually
from tests.support.ids import unique
from tests.support.library import new_member, new_work
from tests.support.outcomes import movement_totals, scalar, stock_of

pytestmark = pytest.mark.e2e

WAIT = 30


def order_body(sku: str, qty: int = 1) -> dict:
    return {"customer_ref": "web-shop", "lines": [{"sku": sku, "qty": qty}]}


def orders_of(engine, client: str, key: str) -> int:
    return scalar(
        engine, "SELECT count(*) FROM orders WHERE idempotency_key = :k", k=f"@{client}/{key}"
    )


def test_the_same_key_twice_is_201_then_200_with_the_same_order(shop, runner, engine):
    sku = new_product(runner, stock=5)
    key = unique("web")

    first = shop.post("/v1/orders", order_body(sku, 2), key=key, wait=WAIT)
    second = shop.post("/v1/orders", order_body(sku, 2), key=key, wait=WAIT)

    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    number = first.json()["result"]["order_number"]
    assert first.headers["Location"] == f"/v1/orders/{number}"
    assert second.status_code == 200, second.text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["result"]["order_number"] == number
    assert second.headers["Location"] == first.headers["Location"]
    assert orders_of(engine, shop.name, key) == 1
    assert stock_of(engine, sku) == (5, 2) == movement_totals(engine, sku)
    order = shop.get(first.headers["Location"])
    assert order.status_code == 200
    assert order.json()["lines"] == [
        {"sku": sku, "qty": 2, "unit_price_cents": 500, "line_total_cents": 1000}
    ]


def test_without_prefer_wait_the_answer_is_202_and_the_key_can_be_looked_up(shop, runner):
    sku = new_product(runner, stock=1)
    key = unique("async")

    accepted = shop.post("/v1/orders", order_body(sku), key=key)

    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Location"] == f"/v1/commands/{key}"
    assert accepted.json()["status"] in ("queued", "running", "succeeded")
    done = eventually(
        lambda: shop.get(accepted.headers["Location"]).json(),
        until=lambda doc: doc["status"] == "succeeded",
        what=f"{key} succeeded",
    )
    assert done["key"] == key and done["type"] == "place_order"
    assert done["result"]["order_number"].startswith("ORD-")


def test_two_parallel_requests_for_the_last_unit_one_201_one_409(shop, runner, engine):
    sku = new_product(runner, stock=1)
    keys = [unique("last"), unique("last")]

    answers = at_once(
        *(lambda k=k: shop.post("/v1/orders", order_body(sku), key=k, wait=WAIT) for k in keys)
    )

    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    refusal = next(a for a in answers if a.status_code == 409)
    assert refusal.headers["Content-Type"] == "application/problem+json"
    problem = refusal.json()
    assert problem["reason"] == "insufficient_stock"
    assert problem["type"] == "urn:orderq:problem:insufficient_stock"
    assert problem["details"]["shortfalls"] == [{"sku": sku, "available": 0, "requested": 1}]
    assert stock_of(engine, sku) == (1, 1)
    again = shop.post("/v1/orders", order_body(sku), key=problem["key"], wait=WAIT)
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"


def test_a_key_reused_with_another_body_is_422_and_changes_nothing(shop, runner, engine):
    sku = new_product(runner, stock=5)
    key = unique("reuse")
    assert shop.post("/v1/orders", order_body(sku, 1), key=key, wait=WAIT).status_code == 201

    reused = shop.post("/v1/orders", order_body(sku, 3), key=key, wait=WAIT)
    other_type = shop.post("/v1/commands/restock_product", {"sku": sku, "qty": 9}, key=key)

    for answer in (reused, other_type):
        assert answer.status_code == 422, answer.text
        assert answer.json()["reason"] == "idempotency_key_reused"
    assert stock_of(engine, sku) == (5, 1)
    assert orders_of(engine, shop.name, key) == 1
    status = shop.get(f"/v1/commands/{key}").json()
    assert status["status"] == "succeeded" and status["type"] == "place_order"


def test_a_key_reused_while_the_first_is_still_queued_is_422_too(shop, runner, engine):
    sku = new_product(runner, stock=0)  # the worker rejects it; what matters is the intake
    key = unique("early")
    first = shop.post("/v1/orders", order_body(sku, 1), key=key)
    reused = shop.post("/v1/orders", order_body(sku, 2), key=key)
    joined = shop.post("/v1/orders", order_body(sku, 1), key=key, wait=WAIT)

    assert first.status_code == 202
    assert reused.status_code == 422 and reused.json()["reason"] == "idempotency_key_reused"
    # the same body again joins the first request: its outcome, marked as a replay
    assert joined.status_code == 409, joined.text
    assert joined.headers["Idempotent-Replayed"] == "true"
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM command_deliveries WHERE idempotency_key = :k",
            k=f"@{shop.name}/{key}",
        )
        == 1
    )


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "required"),
        ("", "required"),
        ("has space", "visible ASCII"),
        ("x" * 256, "1-255"),
        ('"unterminated\\"', "lone backslash"),
    ],
)
def test_a_missing_or_malformed_key_is_400(shop, header, problem):
    answer = shop.post("/v1/orders", order_body("ANY-1"), key=header)

    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"] == "bad_idempotency_key"
    assert problem in answer.json()["detail"]


def test_a_255_character_key_in_structured_field_form_is_accepted(shop, runner):
    sku = new_product(runner, stock=1)
    key = "k" * 250 + unique("")[-5:]
    answer = shop.post("/v1/orders", order_body(sku), key=f'"{key}"', wait=WAIT)

    assert answer.status_code == 201, answer.text
    assert answer.json()["key"] == key
    assert shop.get(f"/v1/commands/{key}").json()["status"] == "succeeded"


def test_missing_wrong_or_revoked_tokens_are_401(shop, new_client, engine, api_server):
    import httpx

    from orderq.http.api_keys import list_api_keys, revoke_api_key

    anonymous = httpx.post(f"{api_server.url}/v1/orders", json={}, headers={"Idempotency-Key": "k"})
    wrong = httpx.get(
        f"{api_server.url}/v1/commands/k", headers={"Authorization": "Bearer oq_not-a-key"}
    )
    client = new_client()
    assert client.get("/v1/commands/nothing").status_code == 404  # authenticated
    (key,) = list_api_keys(engine, client.name)
    revoke_api_key(engine, key.id)
    revoked = client.post("/v1/orders", order_body("ANY-1"), key=unique("k"))

    for answer in (anonymous, wrong, revoked):
        assert answer.status_code == 401, answer.text
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["reason"] == "unauthorized"


def test_clients_never_see_each_others_keys(new_client, runner, engine):
    shop, warehouse = new_client(), new_client()
    sku = new_product(runner, stock=5)
    key = unique("shared")

    mine = shop.post("/v1/orders", order_body(sku, 1), key=key, wait=WAIT)
    lookup = warehouse.get(f"/v1/commands/{key}")
    theirs = warehouse.post("/v1/orders", order_body(sku, 2), key=key, wait=WAIT)

    assert mine.status_code == 201
    assert lookup.status_code == 404  # unknown for the other client
    assert theirs.status_code == 201, theirs.text  # a new order, not a reuse or a replay
    assert theirs.json()["result"]["order_number"] != mine.json()["result"]["order_number"]
    assert stock_of(engine, sku) == (5, 3)
    assert shop.get(f"/v1/commands/{key}").json()["result"] == mine.json()["result"]


def test_invalid_commands_are_422_naming_the_field_and_nothing_is_recorded(shop, engine):
    key = unique("bad")
    answer = shop.post(
        "/v1/orders", {"customer_ref": "x", "lines": [{"sku": "MUG-1", "qty": 0}]}, key=key
    )

    assert answer.status_code == 422
    problem = answer.json()
    assert problem["reason"] == "invalid_command"
    assert {"field": "lines.0.qty", "message": "Input should be greater than 0"} in problem[
        "errors"
    ]
    assert problem["detail"].startswith("lines.0.qty: Input should be greater than 0")
    assert shop.get(f"/v1/commands/{key}").status_code == 404  # the key is still free


def test_a_business_rejection_with_wait_is_409_with_its_reason(shop, runner):
    member = new_member(runner, loan_limit=1)
    _, (barcode,) = new_work(runner, copies=1)
    lend = {"member": member, "barcode": barcode}

    first = shop.post("/v1/loans", lend, key=unique("loan"), wait=WAIT)
    second = shop.post(
        "/v1/loans",
        {"member": new_member(runner), "barcode": barcode},
        key=unique("loan"),
        wait=WAIT,
    )

    assert first.status_code == 201, first.text
    loan = shop.get(first.headers["Location"]).json()
    assert (loan["member"], loan["barcode"], loan["status"]) == (member, barcode, "active")
    assert second.status_code == 409 and second.json()["reason"] == "copy_not_available"
    returned = shop.post(f"/v1/loans/{barcode}/return", None, key=unique("ret"), wait=WAIT)
    assert returned.status_code == 200, returned.text
    assert shop.get(first.headers["Location"]).json()["status"] == "returned"


def test_bounded_input_gets_a_clear_4xx(shop, api_server):
    import httpx

    url = f"{api_server.url}/v1/orders"
    auth = {"Authorization": f"Bearer {shop.token}", "Idempotency-Key": unique("b")}
    deep = b'{"customer_ref": ' + b"[" * 100 + b"]" * 100 + b"}"
    answers = {
        "too large": httpx.post(url, content=b"{" + b" " * 70_000 + b"}", headers=auth),
        "too deep": httpx.post(url, content=deep, headers=auth),
        "not json": httpx.post(url, content=b"{nope", headers=auth),
        "half an emoji": httpx.post(
            url, content=b'{"customer_ref": "\\ud83d", "lines": []}', headers=auth
        ),
        "NUL": httpx.post(
            url,
            json={"customer_ref": "a\u0000b", "lines": [{"sku": "A-1", "qty": 1}]},
            headers=auth,
        ),
        "not an object": httpx.post(url, json=[1, 2], headers=auth),
        "not JSON at all": httpx.post(
            url, content=b"a=b", headers={**auth, "Content-Type": "text/plain"}
        ),
        "huge header": httpx.post(url, json={}, headers={**auth, "X-Big": "a" * 64_000}),
        "unknown type": httpx.post(
            f"{api_server.url}/v1/commands/launch_rocket", json={}, headers=auth
        ),
        "unknown order": httpx.get(f"{api_server.url}/v1/orders/ORD-999999999", headers=auth),
        "not a loan id": httpx.get(f"{api_server.url}/v1/loans/99999999999999999999", headers=auth),
        "NUL in a key": httpx.get(f"{api_server.url}/v1/commands/a%00b", headers=auth),
    }

    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {
        "too large": 413,
        "too deep": 400,
        "not json": 400,
        "half an emoji": 400,
        "NUL": 422,
        "not an object": 422,
        "not JSON at all": 415,
        "huge header": 431,
        "unknown type": 404,
        "unknown order": 404,
        "not a loan id": 404,
        "NUL in a key": 404,
    }
    assert "customer_ref" in answers["NUL"].json()["detail"]
    assert "customer_ref" in answers["half an emoji"].json()["detail"]
    for what, answer in answers.items():
        if what != "huge header":  # answered by the server itself, before the app
            assert answer.headers["Content-Type"] == "application/problem+json", what


def test_the_openapi_document_is_3_1_and_names_every_command(api_server):
    import httpx

    from producers.commands import COMMANDS_BY_TYPE

    document = httpx.get(f"{api_server.url}/openapi.json").json()

    assert document["openapi"].startswith("3.1")
    for command_type in COMMANDS_BY_TYPE:
        assert f"/v1/commands/{command_type}" in document["paths"]
    assert "/v1/orders/{order_number}/payment" in document["paths"]
    assert "PlaceOrderBody" in document["components"]["schemas"]


def test_the_relay_marks_what_it_published(shop, runner, engine):
    sku = new_product(runner, stock=1)
    key = unique("mark")
    assert shop.post("/v1/orders", order_body(sku), key=key, wait=WAIT).status_code == 201
    with engine.connect() as connection:
        published = connection.execute(
            text("SELECT published_at FROM command_deliveries WHERE idempotency_key = :k"),
            {"k": f"@{shop.name}/{key}"},
        ).scalar()
    assert published is not None
