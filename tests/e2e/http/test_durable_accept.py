"""A 2xx means committed: broker down, server killed, a failure before commit — every
accepted command is still decided, exactly once. Each test has a private queue, worker
and (where it stops one) broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from orderq.http.api_keys import create_api_key
from tests.support.commands import new_product
from tests.support.eventually import eventually
from tests.support.http_server import ApiServer, Client
from tests.support.ids import unique
from tests.support.invariants import Scope, assert_invariants
from tests.support.outcomes import await_outcomes, movement_totals, stock_of
from tests.support.redis_server import PrivateRedis
from tests.support.rig import FaultRig

pytestmark = pytest.mark.e2e

#: sweep often so a test does not wait long for the relay once the broker is back
FAST_RELAY = {"ORDERQ_HTTP_RELAY_SWEEP_SECONDS": "0.2", "ORDERQ_HTTP_RELAY_GRACE_SECONDS": "0.5"}


class Stage:
    """A private broker, queue, worker and API servers; everything closed after the test."""

    def __init__(self, engine, broker: PrivateRedis | None) -> None:
        self.engine = engine
        self.rig = FaultRig(broker_url=broker.url if broker else None)
        self.servers: list[ApiServer] = []
        self.clients: list[Client] = []
        self.client_name = unique("c").lower()
        self.token = create_api_key(engine, self.client_name).token

    def server(self) -> ApiServer:
        server = ApiServer(env={**self.rig.env, **FAST_RELAY})
        self.servers.append(server)
        return server.start()

    def client(self, server: ApiServer) -> Client:
        self.clients.append(Client(server.url, self.token, self.client_name))
        return self.clients[-1]

    def stored(self, key: str) -> str:
        return f"@{self.client_name}/{key}"

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for server in self.servers:
            server.stop()
        self.rig.close()


@pytest.fixture
def private_broker() -> Iterator[PrivateRedis]:
    with PrivateRedis() as broker:
        yield broker


@pytest.fixture
def stage(migrated_database, engine, private_broker) -> Iterator[Stage]:
    stage = Stage(engine, private_broker)
    yield stage
    stage.close()


def order(sku: str) -> dict:
    return {"customer_ref": "durable", "lines": [{"sku": sku, "qty": 1}]}


def unpublished(engine, keys: list[str]) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM command_deliveries "
                "WHERE idempotency_key = ANY(:keys) AND published_at IS NULL"
            ),
            {"keys": keys},
        ).scalar_one()


def test_with_the_broker_down_posts_are_accepted_and_decided_once_it_is_back(
    stage, private_broker, runner, engine
):
    sku = new_product(runner, stock=100)
    client = stage.client(stage.server())
    keys = [unique("down") for _ in range(8)]

    private_broker.stop()
    answers = [client.post("/v1/orders", order(sku), key=key) for key in keys]
    stored = [stage.stored(key) for key in keys]

    assert [a.status_code for a in answers] == [202] * len(keys), [a.text for a in answers]
    assert unpublished(engine, stored) == len(keys)  # committed, not published
    # the same requests again (a client retrying) change nothing
    assert {client.post("/v1/orders", order(sku), key=k).status_code for k in keys} == {202}

    private_broker.start()
    stage.rig.worker()
    statuses = await_outcomes(engine, stored, timeout=90)

    assert set(statuses.values()) == {"succeeded"}
    assert stock_of(engine, sku) == (100, len(keys)) == movement_totals(engine, sku)
    assert unpublished(engine, stored) == 0
    assert_invariants(engine, Scope(stored, [sku]))


def test_a_server_killed_right_after_answering_202_still_gets_its_command_decided(
    stage, private_broker, runner, engine
):
    sku = new_product(runner, stock=5)
    first = stage.server()
    key = unique("killed")

    private_broker.stop()  # the first server cannot publish before it dies
    answer = stage.client(first).post("/v1/orders", order(sku), key=key)
    first.kill()

    assert answer.status_code == 202, answer.text
    assert unpublished(engine, [stage.stored(key)]) == 1
    private_broker.start()
    stage.rig.worker()
    restarted = stage.client(stage.server())  # its relay finds the orphan

    status = eventually(
        lambda: restarted.get(f"/v1/commands/{key}").json(),
        until=lambda doc: doc["status"] == "succeeded",
        what=f"{key} decided after the server that took it was killed",
        timeout=60,
    )
    assert status["result"]["order_number"].startswith("ORD-")
    assert stock_of(engine, sku) == (5, 1)
    assert_invariants(engine, Scope([stage.stored(key)], [sku]))


@pytest.fixture
def failing_stage(migrated_database, engine) -> Iterator[Stage]:
    stage = Stage(engine, None)
    yield stage
    stage.close()


def snapshot(engine, stored_key: str, sku: str) -> dict:
    """One consistent view (one REPEATABLE READ snapshot) of everything the key touches."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        one = lambda sql: connection.execute(text(sql), {"k": stored_key, "s": sku}).one()  # noqa: E731
        attempts, error = one(
            "SELECT attempts, last_error FROM command_deliveries WHERE idempotency_key = :k"
        )
        view = {
            "attempts": attempts,
            "error": error,
            "ledger": one("SELECT count(*) FROM command_ledger WHERE idempotency_key = :k")[0],
            "orders": one("SELECT count(*) FROM orders WHERE idempotency_key = :k")[0],
            "items": one(
                "SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id "
                "WHERE o.idempotency_key = :k"
            )[0],
            "movements": one("SELECT count(*) FROM stock_movements WHERE command_key = :k")[0],
            "stock": tuple(
                one(
                    "SELECT s.on_hand, s.reserved FROM stock_levels s "
                    "JOIN products p ON p.id = s.product_id WHERE p.sku = :s"
                )
            ),
        }
        connection.rollback()
    return view


def test_a_failure_injected_before_commit_leaves_nothing_and_the_retry_applies_once(
    failing_stage, runner, engine
):
    stage = failing_stage
    prefix = stage.stored("FP-")
    stage.rig.worker(
        concurrency=1,
        ORDERQ_FAILPOINTS=f"before_commit=raise*1@{prefix}",
        # the retry comes 1-2 s after the failure: time to look at the state in between
        ORDERQ_RETRY_BACKOFF_SECONDS="2",
        ORDERQ_RETRY_BACKOFF_MAX_SECONDS="2",
    )
    client = stage.client(stage.server())
    sku = new_product(runner, stock=3)
    key = unique("FP")
    stored = stage.stored(key)

    accepted = client.post("/v1/orders", order(sku), key=key)
    # the first attempt failed just before COMMIT, and the retry has not started yet
    failed = eventually(
        lambda: snapshot(engine, stored, sku),
        until=lambda view: view["error"] is not None or view["attempts"] > 1,
        what=f"the injected failure of {key}",
    )
    retried = client.post("/v1/orders", order(sku), key=key, wait=30)  # the client's retry

    assert accepted.status_code == 202
    assert failed["attempts"] == 1, "the retry ran before the state could be looked at"
    assert "injected fault" in failed["error"]
    assert failed | {"error": None} == {
        "attempts": 1,
        "error": None,
        "ledger": 0,
        "orders": 0,
        "items": 0,
        "movements": 0,
        "stock": (3, 0),
    }
    assert retried.status_code == 200, retried.text  # joined the first request's command
    assert retried.headers["Idempotent-Replayed"] == "true"
    after = snapshot(engine, stored, sku)
    assert (after["attempts"], after["ledger"], after["orders"], after["items"]) == (2, 1, 1, 1)
    assert after["movements"] == 1 and after["stock"] == (3, 1)
    again = client.post("/v1/orders", order(sku), key=key, wait=30)
    assert again.json()["result"] == retried.json()["result"]
