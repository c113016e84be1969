"""API keys: the database refuses what the code never writes; a key authenticates
until revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from orderq.http.api_keys import (
    ApiKeyError,
    Caller,
    caller_of,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    token_digest,
)
from producers.database import autocommit
from tests.support.ids import unique


def insert_key(engine, client: str, digest: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO api_keys (client, token_prefix, token_sha256) "
                "VALUES (:client, 'oq_x', :digest)"
            ),
            {"client": client, "digest": digest},
        )


@pytest.mark.parametrize("client", ["Shop", "has space", "", "-leading", "x" * 33])
def test_a_malformed_client_name_is_refused_by_the_database(engine, client):
    with pytest.raises(IntegrityError, match="ck_api_keys_client_name"):
        insert_key(engine, client, token_digest(unique("t")))


def test_two_keys_with_one_token_hash_are_refused(engine):
    digest = token_digest(unique("t"))
    insert_key(engine, unique("c").lower(), digest)
    with pytest.raises(IntegrityError, match="uq_api_keys_token_sha256"):
        insert_key(engine, unique("c").lower(), digest)


def test_a_key_authenticates_its_client_until_revoked(engine):
    client = unique("c").lower()
    first, second = create_api_key(engine, client), create_api_key(engine, client)

    revoke_api_key(engine, first.key.id)

    with autocommit(engine) as connection:
        assert caller_of(connection, first.token) is None
        assert caller_of(connection, second.token) == Caller(client, operator=False)
        assert caller_of(connection, "oq_" + "x" * 43) is None
    assert [key.id for key in list_api_keys(engine, client)] == [second.key.id]
    assert len(list_api_keys(engine, client, include_revoked=True)) == 2
    with pytest.raises(ApiKeyError):
        create_api_key(engine, "Not OK")


def test_an_operator_key_says_so_and_a_key_is_a_client_key_by_default(engine):
    client = unique("ops").lower()
    operator = create_api_key(engine, client, operator=True)
    plain = create_api_key(engine, client)

    with autocommit(engine) as connection:
        assert caller_of(connection, operator.token) == Caller(client, operator=True)
        assert caller_of(connection, plain.token) == Caller(client, operator=False)
    listed = {key.id: key.as_dict()["operator"] for key in list_api_keys(engine, client)}
    assert listed == {operator.key.id: True, plain.key.id: False}
    insert_key(engine, client, token_digest(unique("t")))  # written without the column
    assert [key.operator for key in list_api_keys(engine, client)][-1] is False
