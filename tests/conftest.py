"""Fixtures on the real thing: PostgreSQL, Redis, and real Celery worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.environment import SERVERS, TEST_DATABASE_URL, configure_environment

configure_environment()

from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from orderq.settings import Settings  # noqa: E402
from tests.support.database import prepare_database  # noqa: E402
from tests.support.extensions import skip_without_extensions  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402


def pytest_report_header() -> list[str]:
    return SERVERS.describe()


def pytest_terminal_summary(terminalreporter) -> None:
    for line in SERVERS.describe():
        terminalreporter.write_line(line)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.requires_extension("pg_trgm")`: skip, saying why, where the test
    database lacks the extension (a server without its contrib package)."""
    marker = item.get_closest_marker("requires_extension")
    if marker is not None:
        skip_without_extensions(TEST_DATABASE_URL, marker.args)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def migrated_database() -> str:
    """The test database, created if missing and upgraded to head once per session."""
    prepare_database(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def engine(migrated_database: str, settings: Settings) -> Iterator[Engine]:
    from producers.database import build_engine

    engine = build_engine(settings, pool_size=20, max_overflow=20)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: Engine) -> sessionmaker[Session]:
    from worker.adapters.orm import start_mappers

    start_mappers()
    return sessionmaker(bind=engine, expire_on_commit=False)


@pytest.fixture
def runner(settings: Settings, engine: Engine, session_factory: sessionmaker[Session]):
    """The worker's command runner, in this process, on the real database."""
    from worker.service.runner import CommandRunner

    return CommandRunner(settings, engine, session_factory)


@pytest.fixture(scope="session")
def worker(migrated_database: str) -> Iterator[WorkerProcess]:
    """A real `celery worker` (prefork, 2 processes) consuming this session's queue.

    Keys starting `FAILONCE-` fail just before COMMIT on their first attempt.
    """
    process = WorkerProcess(
        concurrency=2, env={"ORDERQ_FAILPOINTS": "before_commit=raise*1@FAILONCE-"}
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def publisher(migrated_database: str, settings: Settings):
    from producers.publisher import Publisher

    with Publisher(settings) as publisher:
        yield publisher
