"""Slow statements are logged with their duration and shape, never their parameters."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from producers.database import build_engine
from worker.adapters.slow_statements import install_slow_statement_log, statement_name


@pytest.fixture
def logged_engine(settings, migrated_database):
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    install_slow_statement_log(engine, threshold_ms=20)
    yield engine
    engine.dispose()


def test_a_slow_statement_is_logged_without_its_parameters(logged_engine, caplog):
    secret = "jane.doe@example.com"
    with caplog.at_level(logging.WARNING, logger="orderq.sql.slow"), logged_engine.connect() as c:
        c.execute(
            text("SELECT pg_sleep(0.05), CAST(:email AS text) AS customer  -- lookup"),
            {"email": secret},
        )
        c.execute(text("SELECT CAST(:email AS text)"), {"email": secret})  # fast: not logged

    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("slow statement ")
    assert "ms [SELECT]" in message and "pg_sleep" in message
    assert secret not in message and secret not in str(record.args)


def test_a_failing_statement_does_not_confuse_the_next_timing(logged_engine, caplog):
    with logged_engine.connect() as connection:
        with pytest.raises(Exception, match="division by zero"):
            connection.execute(text("SELECT 1 / 0"))
        connection.rollback()
        with caplog.at_level(logging.WARNING, logger="orderq.sql.slow"):
            connection.execute(text("SELECT 1"))
    assert caplog.records == []


def test_a_negative_threshold_turns_the_log_off(settings, migrated_database, caplog):
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    install_slow_statement_log(engine, threshold_ms=-1)
    try:
        with caplog.at_level(logging.WARNING, logger="orderq.sql.slow"), engine.connect() as c:
            c.execute(text("SELECT pg_sleep(0.03)"))
    finally:
        engine.dispose()
    assert caplog.records == []


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("UPDATE command_ledger SET status=%(status)s WHERE id = %(id)s", "UPDATE command_ledger"),
        ("INSERT INTO orders (customer_ref) VALUES (%(c)s)", "INSERT INTO orders"),
        ("SELECT products.id FROM products JOIN stock_levels ON 1=1", "SELECT products"),
        ("DELETE FROM command_ledger WHERE id = 1", "DELETE FROM command_ledger"),
    ],
)
def test_statement_names_group_statements_by_verb_and_table(statement, name):
    assert statement_name(statement) == name
