"""Extensions the embedded server lacks are skipped with a reason; every command names
the servers it uses."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text

from orderq.cli.console import describe_target
from tests.support.environment import TEST_BROKER_URL, TEST_DATABASE_URL
from tests.support.ids import unique
from tests.support.workers import PROJECT_ROOT


@pytest.mark.requires_extension("pg_trgm")
def test_trigram_similarity_where_the_server_ships_pg_trgm(engine):
    with engine.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        score = connection.execute(text("SELECT similarity('blue mug', 'blue mugs')")).scalar()

    assert score > 0.5


def orderq(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orderq.cli", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ["status", unique("nobody")],
        ["migrate"],
        ["publish", "restock", "--key", unique("k"), "--sku", unique("SKU"), "--qty", "1"],
    ],
    ids=["status", "migrate", "publish"],
)
def test_every_command_names_its_database_and_broker(migrated_database, arguments):
    result = orderq(*arguments)

    assert result.returncode == 0, result.stderr
    expected = (
        f"database {describe_target(TEST_DATABASE_URL)} · broker {describe_target(TEST_BROKER_URL)}"
    )
    assert expected in " ".join(result.stderr.split())
