"""The API from another language: a Node.js client with nothing but `fetch`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.commands import new_product
from tests.support.ids import unique

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed"),
]
CLIENT = Path(__file__).parent / "clients" / "place_order.mjs"


def test_a_node_client_gets_201_then_the_same_order_replayed(shop, runner, api_server):
    sku = new_product(runner, stock=2)
    key = unique("node")

    run = subprocess.run(
        ["node", str(CLIENT), api_server.url, shop.token, key, sku],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert (seen["first"]["status"], seen["first"]["replayed"]) == (201, None)
    assert (seen["second"]["status"], seen["second"]["replayed"]) == (200, "true")
    assert seen["first"]["body"]["result"] == seen["second"]["body"]["result"]
    assert seen["second"]["location"] == seen["first"]["location"]
