"""The HTTP tests: a real `orderq serve` in front of the session's real worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from orderq.http.api_keys import create_api_key
from tests.support.http_server import ApiServer, Client
from tests.support.ids import unique


@pytest.fixture(scope="session")
def api_server(migrated_database: str, worker) -> Iterator[ApiServer]:
    """`orderq serve` on the session's database, broker and command queue.

    Its relay leaves other servers' unpublished commands alone for ten minutes: the
    durable-accept tests keep commands unpublished on purpose, for their own servers.
    """
    server = ApiServer(env={"ORDERQ_HTTP_RELAY_GRACE_SECONDS": "600"}).start()
    yield server
    server.stop()


@pytest.fixture
def new_client(engine, api_server) -> Iterator[Callable[..., Client]]:
    """Make upstream clients: each a new client name with its own API key."""
    made: list[Client] = []

    def make(name: str | None = None, server: ApiServer | None = None) -> Client:
        client = (name or unique("c")).lower()
        created = create_api_key(engine, client)
        made.append(Client((server or api_server).url, created.token, client))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def shop(new_client) -> Client:
    return new_client()
