"""Migrations: a clean round trip on an empty database, and no drift from the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from tests.support.environment import TEST_DATABASE_URL
from tests.support.migrations import alembic_config, empty_database
from worker.adapters.tables import metadata


@pytest.fixture(scope="module")
def empty_database_url() -> Iterator[str]:
    with empty_database() as url:
        yield url


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_one_head():
    heads = ScriptDirectory.from_config(alembic_config(TEST_DATABASE_URL)).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_database_url):
    config = alembic_config(empty_database_url)

    command.upgrade(config, "head")
    assert table_names(empty_database_url) == set(metadata.tables)
    command.downgrade(config, "base")
    assert table_names(empty_database_url) == set()
    command.upgrade(config, "head")
    assert table_names(empty_database_url) == set(metadata.tables)


def test_models_match_the_migrated_schema(empty_database_url):
    command.upgrade(alembic_config(empty_database_url), "head")
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
