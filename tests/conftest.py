"""Fixtures on the real thing: PostgreSQL, Redis, and real Celery worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.environment import (
    SERVERS,
    TEST_ADMIN_DATABASE_URL,
    TEST_BROKER_URL,
    TEST_DATABASE_URL,
    configure_environment,
)

configure_environment()

from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from orderq.settings import Settings  # noqa: E402
from tests.support.database import prepare_database  # noqa: E402
from tests.support.extensions import skip_without_extensions  # noqa: E402
from tests.support.leftovers import SessionLeftovers  # noqa: E402
from tests.support.scratch import LOGS, remove_all_but, scratch_path  # noqa: E402
from tests.support.workers import WorkerProcess  # noqa: E402

LEFTOVERS = SessionLeftovers(TEST_DATABASE_URL, TEST_BROKER_URL)
_REMAINING = pytest.StashKey[list[str]]()


def pytest_report_header() -> list[str]:
    return SERVERS.describe()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is None:  # tmp_path folders go with the scratch folder
        config.option.basetemp = str(scratch_path("pytest"))


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_all_but(LOGS.kept)  # `pytest --help` and the like configure without a session


def pytest_sessionstart(session: pytest.Session) -> None:
    LEFTOVERS.start()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.requires_extension("pg_trgm")`: skip, saying why, where the test
    database lacks the extension (a server without its contrib package)."""
    LOGS.test_starts()
    marker = item.get_closest_marker("requires_extension")
    if marker is not None:
        skip_without_extensions(TEST_DATABASE_URL, marker.args)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A failing test keeps the logs of the processes it ran (and its tmp_path)."""
    report = yield
    if report.failed:
        tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
        kept = LOGS.keep_current(*([tmp_path] if tmp_path else []))
        if kept:
            report.sections.append(("kept for this failure", "\n".join(map(str, kept))))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove everything the session created; what cannot be removed fails the run."""
    remaining = [str(leftover) for leftover in LEFTOVERS.clean(LOGS.kept)]
    session.config.stash[_REMAINING] = remaining
    if remaining and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    for line in SERVERS.describe():
        terminalreporter.write_line(line)
    if LOGS.kept:
        terminalreporter.write_line("kept for failed tests (remove by hand):")
        for path in LOGS.kept:
            terminalreporter.write_line(f"  {path}")
    remaining = config.stash.get(_REMAINING, [])
    if remaining:
        terminalreporter.write_line("LEFT BEHIND by this test session:", red=True)
        for line in remaining:
            terminalreporter.write_line(f"  {line}", red=True)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def migrated_database() -> str:
    """The test database, created if missing and upgraded to head once per session
    (straight on the server: CREATE DATABASE and index builds bypass any pooler)."""
    prepare_database(TEST_ADMIN_DATABASE_URL)
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
