"""When the servers or the settings are wrong, every command says so in one line:
exit 1 when a server could not do it, exit 2 when the configuration is wrong — never
a traceback."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tests.support.cli import orderq
from tests.support.environment import TEST_BROKER_URL, TEST_DATABASE_URL
from tests.support.ids import unique

pytestmark = pytest.mark.e2e

READ_COMMANDS = [
    ["status", "some-key"],
    ["orders", "list"],
    ["orders", "show", "ORD-000001"],
    ["orders", "report"],
    ["dead-letters", "list"],
    ["dead-letters", "show", "some-key"],
    ["db", "report"],
]


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_an_unreachable_database_is_one_line_exit_1(args):
    env = {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/orderq"}

    result = orderq(*args, env=env)

    assert result.returncode == 1
    line = _one_error_line(result.stderr)
    assert "Connection refused" in line and "port 1 failed" in line


def test_a_database_that_does_not_exist_says_migrate_creates_it(migrated_database):
    missing = make_url(TEST_DATABASE_URL).set(database=f"orderq_never_{unique('db').lower()}")
    env = {"DATABASE_URL": missing.render_as_string(hide_password=False)}

    result = orderq("orders", "list", env=env)

    assert result.returncode == 1
    assert _one_error_line(result.stderr).endswith("does not exist (orderq migrate creates it)")


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"DATABASE_URL": "mysql://db/orders"},
            "error: bad configuration: DATABASE_URL must be a PostgreSQL URL, got driver 'mysql'",
        ),
        (
            {"ORDERQ_POOL_SIZE": "lots"},
            "error: bad configuration: ORDERQ_POOL_SIZE='lots': Input should be a valid integer",
        ),
        (
            {"CELERY_BROKER_URL": ""},
            "error: DATABASE_URL is set but CELERY_BROKER_URL is not",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(env, line):
    result = orderq("status", "some-key", env={"CELERY_BROKER_URL": TEST_BROKER_URL, **env})

    assert result.returncode == 2
    assert _one_error_line(result.stderr).startswith(line)
