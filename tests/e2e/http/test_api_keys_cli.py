"""`orderq api-keys`: the token is the last line, shown once, stored hashed; revoke works."""

from __future__ import annotations

import json

import httpx
import pytest

from orderq.http.api_keys import token_digest
from tests.support.cli import orderq
from tests.support.ids import unique
from tests.support.outcomes import scalar

pytestmark = pytest.mark.e2e


def test_create_list_revoke(api_server, engine):
    client = unique("desk").lower()

    created = orderq("api-keys", "create", "--client", client)
    token = created.stdout.strip().splitlines()[-1]
    listed = orderq("api-keys", "list", "--client", client, "--json")
    (key,) = json.loads(listed.stdout)
    authorized = httpx.get(
        f"{api_server.url}/v1/commands/nothing", headers={"Authorization": f"Bearer {token}"}
    )
    revoked = orderq("api-keys", "revoke", str(key["id"]))
    after = httpx.get(
        f"{api_server.url}/v1/commands/nothing", headers={"Authorization": f"Bearer {token}"}
    )

    assert created.returncode == 0, created.stderr
    assert token.startswith("oq_") and len(token) > 40
    assert key["client"] == client and token.startswith(key["token_prefix"])
    assert token not in listed.stdout
    stored = scalar(engine, "SELECT token_sha256 FROM api_keys WHERE id = :i", i=key["id"])
    assert stored == token_digest(token)  # only the hash is kept
    assert authorized.status_code == 404  # authenticated: the key is just unknown
    assert revoked.returncode == 0, revoked.stderr
    assert after.status_code == 401
    assert json.loads(orderq("api-keys", "list", "--client", client, "--json").stdout) == []


def test_bad_client_names_and_unknown_ids_get_one_clear_line():
    bad = orderq("api-keys", "create", "--client", "Not OK")
    missing = orderq("api-keys", "revoke", "999999999")

    assert bad.returncode == 2 and "is not a client name" in bad.stderr
    assert missing.returncode == 1 and "no API key with id 999999999" in missing.stderr
