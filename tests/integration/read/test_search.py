"""Search as a user types it: typos, accents, any spelling of a phone number."""

from __future__ import annotations

import pytest

from producers.commands import AddCopy, AddWork, CustomerDetails, PlaceOrder, RegisterMember
from tests.support.commands import new_product, run
from tests.support.ids import unique
from tests.support.reads import soft_delete

PHILOSOPHERS_STONE = "Harry Potter and the Philosopher's Stone"


def add_work(runner, title: str, authors: tuple[str, ...], copies: int = 0) -> str:
    code = unique("W")
    assert (
        run(runner, AddWork(key=unique("w"), work=code, title=title, authors=authors)).status
        == "succeeded"
    )
    for _ in range(copies):
        run(runner, AddCopy(key=unique("c"), work=code, barcode=unique("B")))
    return code


@pytest.fixture
def catalogue(runner, engine):
    """A few works with neighbours that look alike; withdrawn again afterwards."""
    codes = {
        "stone": add_work(runner, PHILOSOPHERS_STONE, ("J. K. Rowling",), copies=2),
        "heights": add_work(runner, "Wuthering Heights", ("Emily Brontë",), copies=1),
        "porter": add_work(runner, "The Porter of Harrow", ("Harriet Poole",)),
        "bronze": add_work(runner, "The Bronze Horseman", ("Paullina Simons",)),
    }
    yield codes
    soft_delete(engine, "works", "work_code", list(codes.values()))


def test_harry_poter_finds_the_philosophers_stone_first(reader, catalogue):
    page = reader.search_works("harry poter")

    first = page.results[0]
    assert first["title"] == PHILOSOPHERS_STONE
    assert first["authors"] == ["J. K. Rowling"]
    assert {"work", "title", "authors", "available_copies", "copies"} <= first.keys()
    ours = next(r for r in page.results if r["work"] == catalogue["stone"])
    assert (ours["available_copies"], ours["copies"]) == (2, 2)


def test_bronte_finds_a_work_by_emily_bronte(reader, catalogue):
    page = reader.search_works("bronte")

    assert "Emily Brontë" in page.results[0]["authors"]
    assert catalogue["heights"] in [r["work"] for r in page.results]
    assert catalogue["bronze"] not in [r["work"] for r in page.results]


def test_an_accented_query_finds_the_unaccented_title_and_full_text_ranks_first(reader, catalogue):
    page = reader.search_works("wüthering heights")
    assert page.results[0]["title"] == "Wuthering Heights"
    assert catalogue["heights"] in [r["work"] for r in page.results]


def test_a_withdrawn_work_is_never_found(reader, runner, engine):
    title = f"Zyxwv {unique('t').lower()} Chronicle"
    code = add_work(runner, title, ("Ann Author",))
    assert [r["work"] for r in reader.search_works(title).results] == [code]

    soft_delete(engine, "works", "work_code", [code])

    assert code not in [r["work"] for r in reader.search_works(title).results]


def register(runner, name: str, email: str | None = None, phone: str | None = None) -> str:
    number = unique("M")
    command = RegisterMember(key=unique("r"), member=number, name=name, email=email, phone=phone)
    assert run(runner, command).status == "succeeded"
    return number


def test_a_phone_typed_internationally_finds_the_member_stored_nationally(reader, runner, engine):
    number = register(runner, "Jane Example", phone="020 7946 0000")
    try:
        for typed in ("+44 (0)20 7946-0000", "020 7946 0000", "0044 20 7946 0000", "020 7946"):
            page = reader.search_members(typed)
            found = [r for r in page.results if r["member"] == number]
            assert found, typed
            assert found[0]["phone"] == "020 7946 0000"
            assert found[0]["matched_by"] == "phone"
    finally:
        soft_delete(engine, "members", "member_number", [number])
    assert number not in [r["member"] for r in reader.search_members("020 7946 0000").results]


def test_members_by_name_with_a_typo_and_by_email_in_any_case(reader, runner, engine):
    tag = unique("x").lower().replace("-", "")
    number = register(runner, f"Émile Zolá{tag}", email=f"Emile.{tag}@Example.org")
    try:
        by_name = reader.search_members(f"emile zola{tag}")
        by_email = reader.search_members(f"emile.{tag}@example.ORG")
        by_prefix = reader.search_members(f"EMILE.{tag}@")
    finally:
        soft_delete(engine, "members", "member_number", [number])

    assert by_name.results[0]["member"] == number
    assert by_name.results[0]["matched_by"] == "name"
    assert [r["member"] for r in by_email.results] == [number]
    assert [r["member"] for r in by_prefix.results] == [number]


def test_customers_are_kept_by_place_order_and_found_by_name_email_phone_or_ref(reader, runner):
    sku = new_product(runner, stock=5)
    ref = unique("cust").lower()
    tag = ref.replace("-", "")
    details = CustomerDetails(
        name=f"Zoë Quartz{tag}", email=f"zoe.{tag}@shop.test", phone="+33 1 23 45 67 89"
    )
    run(runner, PlaceOrder(key=unique("o"), customer_ref=ref, lines=[{"sku": sku, "qty": 1}]))
    run(
        runner,
        PlaceOrder(
            key=unique("o"), customer_ref=ref, lines=[{"sku": sku, "qty": 1}], customer=details
        ),
    )

    for query in (f"zoe quartz{tag}", f"ZOE.{tag}@shop.test", ref, "+33 (0)1 23 45 67 89"):
        results = reader.search_customers(query).results
        assert ref in [r["customer"] for r in results], query
    found = next(r for r in reader.search_customers(ref).results if r["customer"] == ref)
    assert (found["name"], found["email"]) == (details.name, details.email)


def test_products_by_sku_prefix_or_name(reader, runner):
    sku = new_product(runner, stock=4)  # SKU-xxxxxxxxxx, named "Thing"
    by_sku = reader.search_products(sku[:9].lower())
    exact = reader.search_products(sku)

    assert sku in [r["sku"] for r in by_sku.results]
    assert exact.results[0]["sku"] == sku
    assert exact.results[0]["available"] == 4
